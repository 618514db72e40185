package langbuild

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wedgeproxy/wedge/internal/testenv"
)

// TestRust_CargoTest runs the native unit tests of sdk/rust (JSON, header
// maps, property paths) and of examples/rust-apikey (its configuration)
// with `cargo test --offline`; off wasm32 the host calls are stubs.
func TestRust_CargoTest(t *testing.T) {
	cargo, rustc, _ := rustTools(t)
	rustdoc := filepath.Join(filepath.Dir(rustc), "rustdoc")
	target := t.TempDir()
	for _, dir := range []string{filepath.Join("sdk", "rust"), filepath.Join("examples", "rust-apikey")} {
		cmd := exec.Command(cargo, "test", "--offline", "--quiet")
		cmd.Dir = filepath.Join(RepoRoot(), dir)
		cmd.Env = append(os.Environ(), "RUSTC="+rustc, "RUSTDOC="+rustdoc, "CARGO_TARGET_DIR="+target, "CARGO_TERM_COLOR=never")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cargo test in %s: %v\n%s", dir, err, bytes.TrimSpace(msg))
		}
	}
}

// TestC_HeaderHelpers builds testdata/header_test.c (the pure helpers of
// sdk/c/wedge_proxy_wasm.h) as a WASI command and runs it in wazero.
func TestC_HeaderHelpers(t *testing.T) {
	clang := testenv.LookPath(t, "clang", CInstall)
	testenv.LookPath(t, "wasm-ld", CInstall)
	out := filepath.Join(t.TempDir(), "header_test.wasm")
	cmd := exec.Command(clang, "--target=wasm32-wasi", "-O1", "-Wall", "-Werror", "-DWEDGE_NO_EXPORTS",
		"-I", filepath.Join(RepoRoot(), "sdk", "c"), "-o", out, filepath.Join("testdata", "header_test.c"))
	if msg, err := cmd.CombinedOutput(); err != nil {
		if bytes.Contains(msg, []byte("file not found")) || bytes.Contains(msg, []byte("libclang_rt")) {
			testenv.Missing(t, "clang cannot build for wasm32-wasi: "+string(msg), CInstall)
		}
		t.Fatalf("building header_test.c: %v\n%s", err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var stdout bytes.Buffer
	_, err = r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStdout(&stdout).WithStderr(&stdout))
	if exit, ok := err.(*sys.ExitError); ok && exit.ExitCode() == 0 {
		err = nil
	}
	if err != nil {
		t.Errorf("header_test.wasm: %v\n%s", err, stdout.Bytes())
	}
}
