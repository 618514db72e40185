// Package langbuild builds the Rust and C plugins of this repository
// (examples/rust-*, examples/c-*, against sdk/rust and sdk/c) for tests,
// with Debian's toolchains, the way each example's README says:
//
//	cargo build --offline --release --target wasm32-wasi      (rustc >= 1.78: wasm32-wasip1)
//	clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c -Wl,--strip-all -o x.wasm x.c
//
// A missing toolchain skips the test through internal/testenv, naming the
// Debian packages (a failure under WEDGE_REQUIRE_ALL=1); a build that fails
// with the toolchain present fails the test with the compiler's output.
package langbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/testenv"
)

// Debian packages of each toolchain, for the skip message.
const (
	RustInstall = "apt-get install rustc cargo libstd-rust-dev-wasm32"
	CInstall    = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
)

// buildTimeout bounds one build; a cold Rust build of an example takes
// seconds.
const buildTimeout = 5 * time.Minute

// RepoRoot returns the repository's root directory, found from this
// source file's path.
func RepoRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}

// rustTools returns cargo and rustc, and the wasm target rustc knows. It
// prefers Debian's /usr/bin pair (a rustup cargo earlier in PATH may not
// have a wasm32 standard library), else the pair in PATH.
func rustTools(t testing.TB) (cargo, rustc, target string) {
	t.Helper()
	cargo, rustc = "/usr/bin/cargo", "/usr/bin/rustc"
	if _, err := os.Stat(cargo); err != nil {
		cargo = testenv.LookPath(t, "cargo", RustInstall)
	}
	if _, err := os.Stat(rustc); err != nil {
		rustc = testenv.LookPath(t, "rustc", RustInstall)
	}
	out, err := exec.Command(rustc, "--print", "sysroot").Output()
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("%s --print sysroot: %v", rustc, err), RustInstall)
	}
	sysroot := strings.TrimSpace(string(out))
	for _, target = range []string{"wasm32-wasip1", "wasm32-wasi"} {
		if _, err := os.Stat(filepath.Join(sysroot, "lib", "rustlib", target)); err == nil {
			return cargo, rustc, target
		}
	}
	testenv.Missing(t, "no wasm32-wasi standard library for "+rustc, RustInstall)
	return "", "", ""
}

// Rust builds the cdylib crate in dir (offline, release profile) with
// outDir as its target directory, and returns the path of the .wasm.
func Rust(t testing.TB, dir, outDir string) string {
	t.Helper()
	cargo, rustc, target := rustTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cargo, "build", "--offline", "--release", "--target", target)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RUSTC="+rustc, "CARGO_TARGET_DIR="+outDir, "CARGO_TERM_COLOR=never")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s with cargo: %v\n%s", dir, err, bytes.TrimSpace(msg))
	}
	wasm, _ := filepath.Glob(filepath.Join(outDir, target, "release", "*.wasm"))
	if len(wasm) != 1 {
		t.Fatalf("building %s: want one .wasm in %s, found %q", dir, filepath.Join(outDir, target, "release"), wasm)
	}
	return wasm[0]
}

// C compiles srcs with clang for wasm32-wasi as a reactor, with sdk/c on
// the include path, into out, and returns out.
func C(t testing.TB, out string, srcs ...string) string {
	t.Helper()
	clang := testenv.LookPath(t, "clang", CInstall)
	testenv.LookPath(t, "wasm-ld", CInstall) // lld, which clang runs to link
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := []string{"--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wall", "-Werror",
		"-I", filepath.Join(RepoRoot(), "sdk", "c"), "-Wl,--strip-all", "-o", out}
	cmd := exec.CommandContext(ctx, clang, append(args, srcs...)...)
	msg, err := cmd.CombinedOutput()
	if err != nil {
		// wasi-libc or the wasm32 runtime library missing: a toolchain
		// problem, not the plugin's.
		for _, sign := range []string{"stdlib.h' file not found", "stdint.h' file not found", "libclang_rt.builtins-wasm32", "unable to find library -lc", "crt1-reactor.o"} {
			if bytes.Contains(msg, []byte(sign)) {
				testenv.Missing(t, "clang cannot build for wasm32-wasi: "+string(bytes.TrimSpace(msg)), CInstall)
			}
		}
		t.Fatalf("building %q with clang: %v\n%s", srcs, err, bytes.TrimSpace(msg))
	}
	return out
}
