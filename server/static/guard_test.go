package static

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rootFiles returns every regular file physically under root, links not
// followed: the only files Serve may ever hand out.
func rootFiles(t testing.TB, root string) []os.FileInfo {
	t.Helper()
	var out []os.FileInfo
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			out = append(out, fi)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkInside fails when r would send a file that is not under the root or
// bytes of the secret.
func checkInside(t testing.TB, target string, r *Response, allowed []os.FileInfo) {
	t.Helper()
	for _, s := range r.Sections {
		if s.File == nil {
			if strings.Contains(string(s.Data), secret) {
				t.Fatalf("%q: secret in a data section", target)
			}
			continue
		}
		fi, err := s.File.Stat()
		if err != nil {
			t.Fatalf("%q: stat of section file: %v", target, err)
		}
		ok := false
		for _, a := range allowed {
			if os.SameFile(fi, a) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("%q: served %s, which is not under the root", target, s.File.Name())
		}
	}
}
