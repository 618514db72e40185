package meter

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/fixture"
)

// FuzzInstrument checks that Instrument never panics, and that whatever
// module wazero accepts it instruments into one wazero accepts too.
func FuzzInstrument(f *testing.F) {
	f.Add(shapesWasm)
	f.Add(globalsWasm)
	for _, n := range []string{"abi", "filter", "background", "shape_rust", "shape_emscripten", "shape_assemblyscript"} {
		f.Add(fixture.Wasm(n))
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm)
		if err != nil {
			return
		}
		cm, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			return
		}
		cm.Close(ctx)
		cm, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero accepts the module but not its instrumented form: %v", err)
		}
		cm.Close(ctx)
	})
}
