//go:build unix

package static

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMount_ServeFIFO: a FIFO under the root is 404 (nginx: not a regular
// file), and opening it does not hang waiting for a writer.
func TestMount_ServeFIFO(t *testing.T) {
	root, _ := testTree(t)
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	m := newTestMount(t, MountConfig{Prefix: "/s/", Root: root})
	done := make(chan int, 1)
	go func() {
		r := serve(m, "GET", "/s/pipe", nil)
		r.Close()
		done <- r.Status
	}()
	select {
	case st := <-done:
		if st != 404 {
			t.Errorf("status %d, want 404", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve hung on a FIFO")
	}
}
