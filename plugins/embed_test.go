package plugins

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuiltin: every built-in is embedded and is a wasm module.
func TestBuiltin(t *testing.T) {
	for _, name := range Names {
		b, ok := Builtin(name)
		if !ok || !bytes.HasPrefix(b, []byte("\x00asm")) {
			t.Errorf("Builtin(%q): %d bytes, %v", name, len(b), ok)
		}
	}
	if _, ok := Builtin("nginx"); ok {
		t.Error(`Builtin("nginx") found something`)
	}
}

// TestBuiltinsUpToDate rebuilds each built-in as `task plugins:build`
// does and fails when the committed .wasm differs: the embedded files must
// come from the source beside them. Builds with -trimpath are
// reproducible with the same Go toolchain.
func TestBuiltinsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three Go wasm modules")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir := t.TempDir()
	for _, name := range Names {
		out := filepath.Join(dir, name+".wasm")
		cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./"+name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, msg)
		}
		built, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		committed, _ := Builtin(name)
		if !bytes.Equal(built, committed) {
			t.Errorf("plugins/%s/%s.wasm is not what its source builds to (%d bytes built, %d committed): run `task plugins:build`",
				name, name, len(built), len(committed))
		}
	}
}
