package meter

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/fixture"
)

//go:generate wat2wasm --debug-names testdata/shapes.wat -o testdata/shapes.wasm
//go:generate wat2wasm testdata/globals.wat -o testdata/globals.wasm

var (
	//go:embed testdata/shapes.wasm
	shapesWasm []byte
	//go:embed testdata/globals.wasm
	globalsWasm []byte
)

// errStop is what the tests' yield panics with to stop a guest.
var errStop = errors.New("stop")

// shapes instantiates shapes.wasm (instrumented when instrument is set)
// with its imports; yield counts into *yields and panics with errStop once
// it reaches stopAt (0: never).
func shapes(t *testing.T, instrument bool, yields *int, stopAt int) api.Module {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	_, err := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithFunc(func(x int32) int32 { return 2 * x }).Export("twice").
		NewFunctionBuilder().WithFunc(func(x int32) int32 { return x + 1 }).Export("inc").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(func() {
		*yields++
		if *yields == stopAt {
			panic(errStop)
		}
	}).Export(ImportName).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.InstantiateWithConfig(ctx, globalsWasm, wazero.NewModuleConfig().WithName("globals")); err != nil {
		t.Fatal(err)
	}
	wasm := shapesWasm
	if instrument {
		if wasm, err = Instrument(wasm); err != nil {
			t.Fatal(err)
		}
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("shapes"))
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// TestInstrument_Semantics runs every export of shapes.wasm before and
// after instrumentation and wants the same results.
func TestInstrument_Semantics(t *testing.T) {
	calls := []struct {
		name string
		args []uint64
		want []uint64
	}{
		{"sum", []uint64{100}, []uint64{4950}},
		{"fact", []uint64{10}, []uint64{3628800}},
		{"calls", []uint64{16}, []uint64{65536}},
		{"indirect", []uint64{0, 10}, []uint64{45}},
		{"indirect", []uint64{1, 5}, []uint64{120}},
		{"indirect", []uint64{2, 21}, []uint64{42}},
		{"indirect", []uint64{3, 41}, []uint64{42}},
		{"via_ref", []uint64{5}, []uint64{120}},
		{"passive", []uint64{5}, []uint64{10}},
		{"direct", []uint64{20}, []uint64{41}},
		{"counter", nil, []uint64{7}},
		{"imported", nil, []uint64{42}},
		{"triangle", []uint64{100}, []uint64{5050}},
		{"pick", []uint64{0}, []uint64{10}},
		{"pick", []uint64{2}, []uint64{30}},
		{"pick", []uint64{9}, []uint64{99}},
		{"simd", nil, []uint64{33}},
		{"fill", []uint64{100}, []uint64{700}},
	}
	for _, instrument := range []bool{false, true} {
		var yields int
		mod := shapes(t, instrument, &yields, 0)
		for _, c := range calls {
			t.Run(fmt.Sprintf("instrumented=%v/%s%v", instrument, c.name, c.args), func(t *testing.T) {
				got, err := mod.ExportedFunction(c.name).Call(context.Background(), c.args...)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("%s%v = %v, want %v", c.name, c.args, got, c.want)
				}
			})
		}
		if !instrument && yields != 0 {
			t.Errorf("the original module yielded %d times", yields)
		}
	}
}

// TestInstrument_Yields checks that a loop, and calls without a loop, reach
// the import, and that a panic there stops the guest.
func TestInstrument_Yields(t *testing.T) {
	ctx := context.Background()
	t.Run("calls without a loop", func(t *testing.T) {
		var yields int
		mod := shapes(t, true, &yields, 0)
		got, err := mod.ExportedFunction("calls").Call(ctx, 22)
		if err != nil || got[0] != 1<<22 {
			t.Fatalf("calls(22) = %v, %v", got, err)
		}
		// 2^22 calls of a body of about 40 bytes.
		if yields < 100 {
			t.Errorf("%d yields, want at least 100", yields)
		}
	})
	for _, name := range []string{"spin", "recurse", "recurse_loop"} {
		t.Run(name, func(t *testing.T) {
			var yields int
			mod := shapes(t, true, &yields, 3)
			_, err := mod.ExportedFunction(name).Call(ctx)
			if err == nil || yields != 3 {
				t.Fatalf("%s: err %v after %d yields, want the third yield's panic", name, err, yields)
			}
		})
	}
}

// TestInstrument_Fixtures instruments the plugin host's fixtures and the Go
// guest and compiles them: each must import the yield function once and
// keep its exports with their signatures.
func TestInstrument_Fixtures(t *testing.T) {
	names := []string{"abi", "filter", "background", "shape_rust", "shape_emscripten", "shape_assemblyscript", "broken_noctx", "broken_sig"}
	mods := map[string][]byte{"shapes": shapesWasm, "globals": globalsWasm}
	for _, n := range names {
		mods[n] = fixture.Wasm(n)
	}
	if testing.Short() {
		t.Log("-short: not building the Go guest")
	} else if wasm, err := fixture.GoGuest(); err == nil {
		mods["goguest"] = wasm
	} else {
		t.Logf("not testing the Go guest: %v", err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for name, wasm := range mods {
		t.Run(name, func(t *testing.T) {
			out, err := Instrument(wasm)
			if err != nil {
				t.Fatal(err)
			}
			before, err := rt.CompileModule(ctx, wasm)
			if err != nil {
				t.Fatal(err)
			}
			after, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("compiling the instrumented module: %v", err)
			}
			n := 0
			for _, def := range after.ImportedFunctions() {
				if m, f, _ := def.Import(); m == ImportModule && f == ImportName {
					n++
					if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
						t.Errorf("yield has type %v -> %v", def.ParamTypes(), def.ResultTypes())
					}
				}
			}
			if n != 1 {
				t.Errorf("%d imports of %s.%s, want 1", n, ImportModule, ImportName)
			}
			if len(after.ImportedFunctions()) != len(before.ImportedFunctions())+1 {
				t.Errorf("%d imported functions, want %d", len(after.ImportedFunctions()), len(before.ImportedFunctions())+1)
			}
			be, ae := before.ExportedFunctions(), after.ExportedFunctions()
			if len(be) != len(ae) {
				t.Errorf("%d exported functions, want %d", len(ae), len(be))
			}
			for name, b := range be {
				a, ok := ae[name]
				if !ok {
					t.Errorf("export %s lost", name)
					continue
				}
				if fmt.Sprint(a.ParamTypes(), a.ResultTypes()) != fmt.Sprint(b.ParamTypes(), b.ResultTypes()) {
					t.Errorf("export %s changed signature", name)
				}
				if a.Name() != b.Name() {
					t.Errorf("export %s: function named %q, was %q", name, a.Name(), b.Name())
				}
			}
		})
	}
}

// TestInstrument_Errors checks what is refused.
func TestInstrument_Errors(t *testing.T) {
	tests := []struct {
		name string
		wasm []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"no magic", []byte("\x00asn\x01\x00\x00\x00"), ErrMalformed},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), ErrUnsupported},
		{"truncated section", []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01"), ErrMalformed},
		{"bad section id", []byte("\x00asm\x01\x00\x00\x00\x20\x00"), ErrUnsupported},
		// one function, body: no locals, 0xfb (GC) 0x00, end
		{"gc instruction", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x07\x01\x05\x00\xfb\x00\x00\x0b"), ErrUnsupported},
		// one function whose body lacks its end
		{"unterminated body", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x05\x01\x03\x00\x01\x01"), ErrMalformed},
		// the same with a byte after its end
		{"trailing code", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x05\x01\x03\x00\x0b\x01"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Instrument(tt.wasm)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestInstrument_Minimal instruments modules lacking the sections it adds
// to, and one without any function.
func TestInstrument_Minimal(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for name, wasm := range map[string][]byte{
		"empty module": []byte("\x00asm\x01\x00\x00\x00"),
		// (module (func (export "f") (result i32) (i32.const 7)))
		"no imports or globals": []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x07\x05\x01\x01f\x00\x00\x0a\x06\x01\x04\x00\x41\x07\x0b"),
		"custom sections only":  []byte("\x00asm\x01\x00\x00\x00\x00\x03\x02hi\x00\x08\x07.debug_"),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := Instrument(wasm)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.CompileModule(ctx, out); err != nil {
				t.Fatalf("compiling the instrumented module: %v", err)
			}
		})
	}
}

// TestInstrument_Checks counts the checks inserted in small bodies: one at
// the entry and one per loop, but none at the entry of a body that reaches
// a loop before any branch or call.
func TestInstrument_Checks(t *testing.T) {
	tests := []struct {
		name string
		code string // the body's instructions, without locals and end
		want int
	}{
		{"empty", "", 1},
		{"loop first", "\x03\x40\x0b", 1},
		{"block then loop", "\x02\x40\x03\x40\x0b\x0b", 1},
		{"plain then loop", "\x41\x01\x1a\x03\x40\x0b", 2}, // drop (0x1a) counts as control: conservative
		{"global then loop", "\x23\x00\x24\x00\x03\x40\x0b", 1},
		{"call then loop", "\x10\x00\x03\x40\x0b", 2},
		{"if then loop", "\x41\x01\x04\x40\x0b\x03\x40\x0b", 2},
		{"two loops", "\x03\x40\x0b\x03\x40\x03\x40\x0b\x0b", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// (module (global (mut i32) (i32.const 0)) (func <code>))
			body := "\x00" + tt.code + "\x0b"
			code := "\x01" + string(rune(len(body))) + body
			wasm := "\x00asm\x01\x00\x00\x00" +
				"\x01\x04\x01\x60\x00\x00" + // type [] -> []
				"\x03\x02\x01\x00" + // one function
				"\x06\x06\x01\x7f\x01\x41\x00\x0b" + // global 0
				"\x0a" + string(rune(len(code))) + code
			out, err := Instrument([]byte(wasm))
			if err != nil {
				t.Fatal(err)
			}
			// Each check calls the import, function 0: "\x10\x00" after
			// "if": "\x04\x40\x10\x00".
			if n := strings.Count(string(out), "\x04\x40\x10\x00"); n != tt.want {
				t.Errorf("%d checks, want %d", n, tt.want)
			}
		})
	}
}

// BenchmarkInstrument is the load-time cost of instrumenting a module:
// shapes.wasm, and the Go guest (2.3 MB) when it can be built.
func BenchmarkInstrument(b *testing.B) {
	mods := map[string][]byte{"shapes": shapesWasm}
	if wasm, err := fixture.GoGuest(); err == nil {
		mods["goguest"] = wasm
	}
	for name, wasm := range mods {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(wasm)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Instrument(wasm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
