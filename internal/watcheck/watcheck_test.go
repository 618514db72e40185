// Package watcheck holds one test: every committed .wasm that is built from
// a .wat beside it (plugin host fixtures, example plugins) is rebuilt with
// wabt's wat2wasm and must match byte for byte, so a .wat edited without
// regenerating its .wasm fails CI.
package watcheck

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/internal/testenv"
)

func TestCommittedWasmMatchesWat(t *testing.T) {
	wat2wasm := testenv.LookPath(t, "wat2wasm", "apt-get install wabt")
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".wat") {
			return nil
		}
		committed, err := os.ReadFile(strings.TrimSuffix(p, ".wat") + ".wasm")
		if os.IsNotExist(err) {
			return nil // a .wat without a committed .wasm is built elsewhere
		}
		if err != nil {
			return err
		}
		// A fixture may be built with or without the name section
		// (wat2wasm --debug-names); either build may match.
		match := false
		for _, flags := range [][]string{nil, {"--debug-names"}} {
			out := filepath.Join(t.TempDir(), "out.wasm")
			args := append(append([]string{}, flags...), p, "-o", out)
			if msg, err := exec.Command(wat2wasm, args...).CombinedOutput(); err != nil {
				t.Errorf("wat2wasm %s: %v\n%s", p, err, msg)
				return nil
			}
			built, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			match = match || bytes.Equal(built, committed)
		}
		if !match {
			t.Errorf("%s is stale: rebuild it with `wat2wasm %s -o %s`", strings.TrimSuffix(p, ".wat")+".wasm", p, strings.TrimSuffix(p, ".wat")+".wasm")
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("found no .wat/.wasm pairs: the walk is looking in the wrong place")
	}
	t.Logf("%d committed .wasm files match their .wat", n)
}
