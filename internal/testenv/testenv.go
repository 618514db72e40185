// Package testenv lets tests that need an outside tool (Gunicorn, nginx,
// clang, wat2wasm, ...) skip on a machine with only Go, with a message
// naming what to install, and fail instead when WEDGE_REQUIRE_ALL=1 (set by
// .ci/run, which installs everything), so CI never passes by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAllEnv is the environment variable that turns every skip for a
// missing tool into a failure.
const RequireAllEnv = "WEDGE_REQUIRE_ALL"

// LookPath returns the path of the executable name, or skips the test (fails
// it under WEDGE_REQUIRE_ALL=1) with install, e.g. "apt-get install gunicorn".
func LookPath(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found", install)
	}
	return p
}

// Missing skips the test because of what (fails it under WEDGE_REQUIRE_ALL=1),
// telling how to install what is missing.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if os.Getenv(RequireAllEnv) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping; install with: %s)", what, RequireAllEnv, install)
	}
	t.Skipf("%s; install with: %s", what, install)
}

// Short skips a long test under `go test -short`. Under WEDGE_REQUIRE_ALL=1
// it still runs.
func Short(t testing.TB, why string) {
	t.Helper()
	if testing.Short() && os.Getenv(RequireAllEnv) != "1" {
		t.Skip("skipped in -short mode: " + why)
	}
}
