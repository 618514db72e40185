package cachestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

func body(t testing.TB, e Entry) []byte {
	t.Helper()
	sec, f, err := e.Section()
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		return sec.Data
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(sec.File, sec.Offset, sec.Length))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVariant(t *testing.T) {
	tests := []struct {
		name  string
		vary  []string
		req   message.Header
		want  string
		match bool
	}{
		{"no vary", nil, nil, "", true},
		{"star never matches (§4.1)", []string{"*"}, nil, "", false},
		{"absent field", []string{"accept-encoding"}, nil, "\x01", true},
		{"empty field differs from absent", []string{"accept-encoding"}, message.Header{{Name: "Accept-Encoding", Value: ""}}, "", true},
		{"whitespace normalized", []string{"accept-encoding"}, message.Header{{Name: "accept-encoding", Value: "gzip,   br"}}, "gzip, br", true},
		{"values combined", []string{"accept-language"}, message.Header{{Name: "Accept-Language", Value: "en"}, {Name: "Accept-Language", Value: "fr"}}, "en, fr", true},
		{"two names", []string{"a", "b"}, message.Header{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}}, "1\x002", true},
	}
	for _, tt := range tests {
		got, ok := Variant(tt.vary, tt.req)
		if got != tt.want || ok != tt.match {
			t.Errorf("%s: Variant = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.match)
		}
	}
}

func TestStore_PutLookup(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s, err := New(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		h := message.Header{{Name: "Vary", Value: "Accept-Encoding"}, {Name: "Content-Type", Value: "text/plain"}}
		gz := message.Header{{Name: "Accept-Encoding", Value: "gzip"}}
		now := time.Now()
		if _, err := s.Put("http://a/x", gz, 200, h, []message.Section{{Data: []byte("gzipped")}}, now, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put("http://a/x", nil, 200, h, []message.Section{{Data: []byte("plain")}}, now, now); err != nil {
			t.Fatal(err)
		}
		if got := s.Lookup("http://a/x", gz); len(got) != 1 || string(body(t, got[0])) != "gzipped" {
			t.Fatalf("dir %q: gzip lookup = %+v", dir, got)
		}
		if got := s.Lookup("http://a/x", nil); len(got) != 1 || string(body(t, got[0])) != "plain" {
			t.Fatalf("dir %q: identity lookup = %+v", dir, got)
		}
		if got := s.Lookup("http://a/x", message.Header{{Name: "Accept-Encoding", Value: "br"}}); got != nil {
			t.Fatalf("br lookup = %+v, want none", got)
		}
		// Replacing a variant keeps one entry per variant.
		e, err := s.Put("http://a/x", gz, 200, h, []message.Section{{Data: []byte("gzipped2")}}, now, now)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Entries != 2 || st.Purged != 0 || st.Evicted != 0 {
			t.Fatalf("stats after replace = %+v", st)
		}
		fr, ok := s.Freshen(e.ID, message.Header{{Name: "ETag", Value: `"2"`}}, now.Add(time.Second), now.Add(time.Second))
		if !ok || fr.Header.Get("ETag") != `"2"` || string(body(t, fr)) != "gzipped2" {
			t.Fatalf("Freshen = %+v, %v", fr, ok)
		}
		if n := s.Purge("http://a/x"); n != 2 {
			t.Fatalf("Purge removed %d, want 2", n)
		}
		if st := s.Stats(); st.Entries != 0 || st.Bytes != 0 || st.Purged != 2 {
			t.Fatalf("stats after purge = %+v", st)
		}
		if dir != "" {
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("%d body files left after purge", len(left))
			}
		}
	}
}

func TestStore_Evicts(t *testing.T) {
	s, err := New(Options{MaxBytes: 10 << 10, MaxEntryBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 2<<10)
	now := time.Now()
	for i := range 20 {
		if _, err := s.Put(fmt.Sprintf("k%d", i), nil, 200, nil, []message.Section{{Data: big}}, now, now); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		s.Lookup("k0", nil) // k0 stays the most recently used
	}
	st := s.Stats()
	if st.Bytes > 10<<10 || st.Evicted == 0 {
		t.Fatalf("stats = %+v: want bytes <= 10 KiB and evictions", st)
	}
	if s.Lookup("k0", nil) == nil {
		t.Error("the most recently used entry was evicted")
	}
	if s.Lookup("k1", nil) != nil {
		t.Error("the least recently used entry survived")
	}
	if _, err := s.Put("huge", nil, 200, nil, []message.Section{{Data: make([]byte, 5<<10)}}, now, now); err != ErrTooLarge {
		t.Errorf("Put over MaxEntryBytes = %v, want ErrTooLarge", err)
	}
	if n := s.PurgePrefix(""); int64(n) != st.Entries {
		t.Errorf("PurgePrefix(\"\") = %d, want %d", n, st.Entries)
	}
}

// TestStore_Hammer puts, looks up, freshens and purges from many goroutines
// (run with -race); the byte bound must hold throughout and every body
// read must be one that was stored.
func TestStore_Hammer(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s, err := New(Options{MaxBytes: 64 << 10, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for range 400 {
					k := fmt.Sprintf("http://h/%d", r.IntN(32))
					v := message.Header{{Name: "Accept-Encoding", Value: []string{"gzip", "br"}[r.IntN(2)]}}
					switch r.IntN(10) {
					case 0, 1, 2:
						b := bytes.Repeat([]byte(k), 1+r.IntN(200))
						if _, err := s.Put(k, v, 200, message.Header{{Name: "Vary", Value: "accept-encoding"}}, []message.Section{{Data: b}}, time.Now(), time.Now()); err != nil {
							t.Error(err)
							return
						}
					case 3:
						for _, e := range s.Lookup(k, v) {
							s.Freshen(e.ID, message.Header{{Name: "Vary", Value: "accept-encoding"}, {Name: "X", Value: "1"}}, time.Now(), time.Now())
						}
					case 4:
						s.Purge(k)
					default:
						for _, e := range s.Lookup(k, v) {
							sec, f, err := e.Section()
							if errors.Is(err, ErrGone) {
								continue // evicted between Lookup and Section
							}
							if err != nil {
								t.Error(err)
								return
							}
							var b []byte
							if f != nil {
								b, _ = io.ReadAll(io.NewSectionReader(f, 0, sec.Length))
								f.Close()
							} else {
								b = sec.Data
							}
							if int64(len(b)) != e.Size || !bytes.HasPrefix(b, []byte(k)) {
								t.Errorf("read %d bytes for %s (size %d)", len(b), k, e.Size)
								return
							}
						}
					}
					if st := s.Stats(); st.Bytes > 64<<10 {
						t.Errorf("store holds %d bytes, over its bound", st.Bytes)
						return
					}
				}
			}()
		}
		wg.Wait()
		s.Close()
	}
}
