package static

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

func TestNew(t *testing.T) {
	root, _ := testTree(t)
	for _, tc := range []struct {
		name       string
		cfg        MountConfig
		wantPrefix string
		wantErr    error // nil: success; errAny: some error
	}{
		{"slash added", MountConfig{Prefix: "/static", Root: root}, "/static/", nil},
		{"kept", MountConfig{Prefix: "/static/", Root: root}, "/static/", nil},
		{"cleaned", MountConfig{Prefix: "//a/./b/../c//", Root: root}, "/a/c/", nil},
		{"root prefix", MountConfig{Prefix: "/", Root: root}, "/", nil},
		{"no leading slash", MountConfig{Prefix: "static/", Root: root}, "", ErrBadPrefix},
		{"empty prefix", MountConfig{Root: root}, "", ErrBadPrefix},
		{"backslash prefix", MountConfig{Prefix: "/a\\b/", Root: root}, "", ErrBadPrefix},
		{"index with slash", MountConfig{Prefix: "/s/", Root: root, Index: "a/index.html"}, "", ErrBadIndex},
		{"index dotdot", MountConfig{Prefix: "/s/", Root: root, Index: ".."}, "", ErrBadIndex},
		{"empty root", MountConfig{Prefix: "/s/"}, "", ErrNoRoot},
		{"missing root", MountConfig{Prefix: "/s/", Root: filepath.Join(root, "nope")}, "", fs.ErrNotExist},
		{"root is a file", MountConfig{Prefix: "/s/", Root: filepath.Join(root, "a.css")}, "", errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.cfg)
			if tc.wantErr != nil {
				if err == nil {
					m.Close()
					t.Fatal("no error")
				}
				if tc.wantErr != errAny && !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Prefix() != tc.wantPrefix {
				t.Errorf("Prefix() = %q, want %q", m.Prefix(), tc.wantPrefix)
			}
			if !filepath.IsAbs(m.Root()) {
				t.Errorf("Root() = %q, not absolute", m.Root())
			}
		})
	}
}

var errAny = errors.New("any error")

func TestNewTable(t *testing.T) {
	root, _ := testTree(t)
	if _, err := NewTable([]MountConfig{{Prefix: "/a", Root: root}, {Prefix: "/a/", Root: root}}); !errors.Is(err, ErrDuplicatePrefix) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := NewTable([]MountConfig{{Prefix: "/a", Root: root}, {Prefix: "b", Root: root}}); !errors.Is(err, ErrBadPrefix) {
		t.Errorf("bad second mount: %v", err)
	}
	tb, err := NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Match("/x"); ok {
		t.Error("empty table matched")
	}
	var nilTable *Table
	if _, ok := nilTable.Match("/x"); ok || nilTable.Close() != nil {
		t.Error("nil table")
	}
}

func TestTable_Match(t *testing.T) {
	root, _ := testTree(t)
	tb, err := NewTable([]MountConfig{
		{Prefix: "/static/", Root: root},
		{Prefix: "/static/img/", Root: root},
		{Prefix: "/files", Root: root},
		{Prefix: "/protected/", Root: root, Internal: true},
		{Prefix: "/static/img/private/", Root: root, Internal: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for _, tc := range []struct {
		path     string
		want     string // prefix of the match, "" for none
		internal string // for MatchInternal
	}{
		{"/static/a.css", "/static/", "/static/"},
		{"/static/a.css?v=1", "/static/", "/static/"},
		{"/static/img/a.png", "/static/img/", "/static/img/"},
		{"/static/img", "/static/img/", "/static/img/"},
		{"/static/imgx/a.png", "/static/", "/static/"},
		{"/static", "/static/", "/static/"},
		{"/staticx", "", ""},
		{"/files/x", "/files/", "/files/"},
		{"/", "", ""},
		{"/app/x", "", ""},
		// Matching is on the decoded, cleaned path (nginx normalizes the
		// URI before choosing a location).
		{"/static/../app/x", "", ""},
		{"/app/../static/a.css", "/static/", "/static/"},
		{"/%73tatic/a.css", "/static/", "/static/"},
		{"//static//img//a.png", "/static/img/", "/static/img/"},
		// An undecodable path is matched as it is, so the mount gives 400.
		{"/static/%zz", "/static/", "/static/"},
		{"/app/%zz", "", ""},
		// Internal mounts are skipped by Match (nginx `internal`), and the
		// next longest prefix takes over.
		{"/protected/f.txt", "", "/protected/"},
		// ... and a shorter prefix does not take over, or it would serve
		// what the internal mount protects.
		{"/static/img/private/k.png", "", "/static/img/private/"},
		{"/static/img/x/../private/k.png", "", "/static/img/private/"},
		{"/static/img/private", "", "/static/img/private/"},
	} {
		m, ok := tb.Match(tc.path)
		if got := prefixOf(m, ok); got != tc.want {
			t.Errorf("Match(%q) = %q, want %q", tc.path, got, tc.want)
		}
		m, ok = tb.MatchInternal(tc.path)
		if got := prefixOf(m, ok); got != tc.internal {
			t.Errorf("MatchInternal(%q) = %q, want %q", tc.path, got, tc.internal)
		}
	}
	if ms := tb.Mounts(); len(ms) != 5 || ms[0].Prefix() != "/static/img/private/" {
		t.Errorf("Mounts() order: %v", ms[0].Prefix())
	}
}

func prefixOf(m *Mount, ok bool) string {
	if !ok {
		return ""
	}
	return m.Prefix()
}

// TestTable_MatchInternal: an internal mount is reached only through
// MatchInternal, and then serves like any other.
func TestTable_MatchInternal(t *testing.T) {
	root, _ := testTree(t)
	tb, err := NewTable([]MountConfig{{Prefix: "/protected/", Root: root, Internal: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if _, ok := tb.Match("/protected/a.css"); ok {
		t.Fatal("client reached an internal mount")
	}
	m, ok := tb.MatchInternal("/protected/a.css?x")
	if !ok {
		t.Fatal("no internal match")
	}
	r := serve(m, "GET", "/protected/a.css?x", hdr("Range", "bytes=0-3"))
	defer r.Close()
	if r.Status != 206 || body(t, r) != "body" {
		t.Errorf("status %d", r.Status)
	}
}
