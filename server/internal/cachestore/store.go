// Package cachestore is the host side of Wedge's HTTP cache: a store of
// responses bounded in bytes, evicting the least recently used, with the
// bodies in memory or as files in a directory (the index always in
// memory). The policy (what may be stored, for how long, what may be
// served) is the cache plugin's; this package keeps what it is told to
// keep and finds it again.
//
// Entries are filed by primary key and variant (RFC 9111 §2, §4, §4.1): the
// primary key is the effective request URI of a GET (the plugin builds it;
// "https://example.com/a?b"), and a primary key holds one entry per
// variant, the values the request carried for the header fields the
// response's Vary names, normalized by Variant. A store is safe for
// concurrent use.
package cachestore

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Defaults for Options' zero fields.
const (
	DefaultMaxBytes      = 256 << 20
	DefaultMaxEntryBytes = 16 << 20
)

// ErrTooLarge is returned by Put for a body over Options.MaxEntryBytes (or
// over MaxBytes itself).
var ErrTooLarge = errors.New("cachestore: response larger than the largest storable entry")

// ErrGone is returned by Entry.Section when the entry's body file was
// removed (evicted, purged, replaced) after the entry was looked up: the
// caller treats it as a miss.
var ErrGone = errors.New("cachestore: entry is gone")

// Options bound a Store. The zero value keeps at most 256 MiB in memory.
type Options struct {
	// MaxBytes bounds the sum of the entries' sizes (body plus header
	// fields), in bytes; past it the least recently used entries are
	// evicted. 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxEntryBytes is the largest body stored, in bytes (nginx
	// proxy_cache's max_size has no per-entry twin; Varnish's
	// transient limit does). 0 means DefaultMaxEntryBytes.
	MaxEntryBytes int64
	// Dir, when set, keeps bodies as files in this directory (created if
	// missing; files it holds from an earlier run are removed at New,
	// since the index lives in memory). Empty keeps bodies in memory.
	Dir string
}

// Entry is one stored response. Its fields are set at Put and never
// change afterwards, except Header, RequestTime and ResponseTime, which
// Freshen replaces as a whole (readers get a copy through Lookup/Get).
type Entry struct {
	// ID names the entry for the plugin (wedge_cache_serve); never 0,
	// never reused within a process.
	ID uint64
	// Key is the primary key, Variant the normalized values of the
	// request fields Vary names (see Variant), Vary those field names in
	// lower case (nil without Vary).
	Key, Variant string
	Vary         []string
	// Status is the response's status code.
	Status int
	// Header holds the stored response's fields (RFC 9111 §3.1: as
	// received, minus what the plugin chose not to keep).
	Header message.Header
	// RequestTime and ResponseTime are when the request that fetched the
	// response was sent and when its response arrived: request_time and
	// response_time of RFC 9111 §4.2.3.
	RequestTime, ResponseTime time.Time
	// Size is the body's length in bytes.
	Size int64
	// Fast, when set (SetFast), says the entry may be served by Wedge
	// itself while fresh, without its plugin. Shared and never modified:
	// SetFast replaces it, Freshen drops it.
	Fast *Fast

	data []byte // the body in memory mode
	path string // the body's file in disk mode
	cost int64
}

// Fast is how Wedge may serve a stored entry in place of the plugin that
// stored it (wedge_cache_store's fresh_ms): while the entry's current age
// (RFC 9111 §4.2.3) is under Lifetime, to a GET (and, with Head, a HEAD)
// carrying none of the fields that could change the plugin's decision.
type Fast struct {
	// Plugin is the name of the plugin that stored the entry; only its
	// place in the chain is taken.
	Plugin string
	// Lifetime is the freshness lifetime the plugin computed (RFC 9111
	// §4.2.1, §4.2.2).
	Lifetime time.Duration
	// Head allows HEAD requests too.
	Head bool
	// HitStatus is this cache's Cache-Status member for a hit (RFC 9211),
	// e.g. "wedge; hit"; "; ttl=N" is appended.
	HitStatus string
}

// Section returns the body as one section to write without copying: the
// bytes in memory, or the whole body file opened anew (sent with
// sendfile); the caller closes the returned file, if any, once written.
// A file opened before the entry is evicted stays readable (its name is
// unlinked only); one evicted before returns ErrGone.
func (e *Entry) Section() (message.Section, *os.File, error) {
	if e.path == "" {
		return message.Section{Data: e.data}, nil, nil
	}
	f, err := os.Open(e.path)
	if errors.Is(err, os.ErrNotExist) {
		return message.Section{}, nil, ErrGone
	}
	if err != nil {
		return message.Section{}, nil, fmt.Errorf("opening cached body: %w", err)
	}
	return message.Section{File: f, Offset: 0, Length: e.Size}, f, nil
}

// Stats are a store's counters, for metrics.
type Stats struct {
	// Entries and Bytes are what the store holds now.
	Entries, Bytes int64
	// Stored, Evicted and Purged count entries since New.
	Stored, Evicted, Purged int64
}

// Store holds entries. See the package documentation.
type Store struct {
	opt Options

	mu    sync.Mutex
	lru   *simplelru.LRU[uint64, *Entry]
	keys  map[string][]*Entry // primary key -> variants, newest first
	bytes int64
	// purging is set while entries are removed on purpose, so that the
	// LRU's callback counts them as purged rather than evicted.
	purging bool

	nextID                  atomic.Uint64
	stored, evicted, purged atomic.Int64
}

// New returns an empty store. With Options.Dir it creates the directory
// and removes the body files an earlier process left there.
func New(opt Options) (*Store, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxEntryBytes <= 0 {
		opt.MaxEntryBytes = DefaultMaxEntryBytes
	}
	s := &Store{opt: opt, keys: make(map[string][]*Entry)}
	lru, err := simplelru.NewLRU[uint64, *Entry](math.MaxInt32, s.onEvict)
	if err != nil {
		return nil, fmt.Errorf("creating cache store: %w", err)
	}
	s.lru = lru
	if opt.Dir != "" {
		if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating cache directory: %w", err)
		}
		old, _ := filepath.Glob(filepath.Join(opt.Dir, "*.body"))
		for _, p := range old {
			os.Remove(p)
		}
	}
	return s, nil
}

// Options returns the store's options with defaults applied.
func (s *Store) Options() Options { return s.opt }

// onEvict runs under s.mu whenever an entry leaves the LRU.
func (s *Store) onEvict(_ uint64, e *Entry) {
	s.bytes -= e.cost
	vs := s.keys[e.Key]
	if i := slices.Index(vs, e); i >= 0 {
		vs = slices.Delete(vs, i, i+1)
	}
	if len(vs) == 0 {
		delete(s.keys, e.Key)
	} else {
		s.keys[e.Key] = vs
	}
	if e.path != "" {
		os.Remove(e.path) // a serve holding it open keeps reading it
	}
	if s.purging {
		s.purged.Add(1)
	} else {
		s.evicted.Add(1)
	}
}

// Variant returns the secondary key of a request for the header fields a
// response's Vary names (RFC 9111 §4.1): for each name in order, its
// values in the request joined with ", " and with runs of spaces and tabs
// collapsed, "\x00" between names. A missing field differs from an empty
// one. vary holds lower-case names; "*" is never matched (ok false).
func Variant(vary []string, h message.Header) (v string, ok bool) {
	if len(vary) == 0 {
		return "", true
	}
	var b strings.Builder
	for i, name := range vary {
		if name == "*" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		vals := h.Values(name)
		if len(vals) == 0 {
			b.WriteByte(1) // absent
			continue
		}
		for j, val := range vals {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strings.Join(strings.Fields(val), " "))
		}
	}
	return b.String(), true
}

// VaryNames returns the lower-case field names a response's Vary fields
// list, "*" included.
func VaryNames(h message.Header) []string {
	var names []string
	for _, v := range h.Values("Vary") {
		for _, n := range strings.Split(v, ",") {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// Lookup returns copies of the entries stored under key whose variant
// matches the request fields req (RFC 9111 §4.1), newest first, and marks
// them used. It returns nil when none matches.
func (s *Store) Lookup(key string, req message.Header) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for _, e := range s.keys[key] {
		if v, ok := Variant(e.Vary, req); ok && v == e.Variant {
			s.lru.Get(e.ID)
			c := *e
			c.Header = e.Header.Clone()
			out = append(out, c)
		}
	}
	return out
}

// Get returns a copy of the entry with this id, or false when it is gone
// (evicted, purged or replaced).
func (s *Store) Get(id uint64) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Get(id)
	if !ok {
		return Entry{}, false
	}
	c := *e
	c.Header = e.Header.Clone()
	return c, true
}

// Put stores a response under key for the request fields req, replacing
// the entry of the same variant (RFC 9111 §3: the new response replaces
// the stored one). body holds the body as sections (a spool's), read
// once. It returns the new entry's copy, or ErrTooLarge, or an error
// writing the body file.
func (s *Store) Put(key string, req message.Header, status int, header message.Header, body []message.Section, reqTime, respTime time.Time) (Entry, error) {
	var size int64
	for _, sec := range body {
		size += sec.Len()
	}
	e := &Entry{
		ID: s.nextID.Add(1), Key: key, Vary: VaryNames(header), Status: status,
		Header: header.Clone(), RequestTime: reqTime, ResponseTime: respTime, Size: size,
	}
	var ok bool
	if e.Variant, ok = Variant(e.Vary, req); !ok {
		return Entry{}, errors.New("cachestore: Vary: * is never stored")
	}
	e.cost = size + int64(len(key)+len(e.Variant)) + headerSize(e.Header) + 256
	if size > s.opt.MaxEntryBytes || e.cost > s.opt.MaxBytes {
		return Entry{}, ErrTooLarge
	}
	if s.opt.Dir == "" {
		e.data = make([]byte, 0, size)
		for _, sec := range body {
			if sec.File == nil {
				e.data = append(e.data, sec.Data...)
				continue
			}
			start := len(e.data)
			e.data = e.data[:start+int(sec.Length)]
			if _, err := sec.File.ReadAt(e.data[start:], sec.Offset); err != nil && !errors.Is(err, io.EOF) {
				return Entry{}, fmt.Errorf("reading body to cache: %w", err)
			}
		}
	} else {
		p, err := s.writeFile(e.ID, body)
		if err != nil {
			return Entry{}, err
		}
		e.path = p
	}
	s.mu.Lock()
	for _, old := range s.keys[key] {
		if old.Variant == e.Variant {
			s.purging = true
			s.lru.Remove(old.ID)
			s.purging = false
			s.purged.Add(-1) // a replacement is neither purged nor evicted
			break
		}
	}
	s.keys[key] = append([]*Entry{e}, s.keys[key]...)
	s.lru.Add(e.ID, e)
	s.bytes += e.cost
	for s.bytes > s.opt.MaxBytes {
		if _, _, ok := s.lru.RemoveOldest(); !ok {
			break
		}
	}
	c := *e
	c.Header = e.Header.Clone()
	s.mu.Unlock()
	s.stored.Add(1)
	return c, nil
}

func (s *Store) writeFile(id uint64, body []message.Section) (string, error) {
	p := filepath.Join(s.opt.Dir, strconv.FormatUint(id, 36)+".body")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("creating cache file: %w", err)
	}
	for _, sec := range body {
		if sec.File == nil {
			_, err = f.Write(sec.Data)
		} else {
			_, err = io.Copy(f, io.NewSectionReader(sec.File, sec.Offset, sec.Length))
		}
		if err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return "", fmt.Errorf("writing cache file: %w", err)
	}
	return p, nil
}

func headerSize(h message.Header) int64 {
	var n int64
	for _, f := range h {
		n += int64(len(f.Name) + len(f.Value) + 4)
	}
	return n
}

// Freshen replaces a stored entry's header fields and times, after a 304
// validated it (RFC 9111 §4.3.4): header is the new whole field list. It
// returns the updated copy, or false when the entry is gone.
func (s *Store) Freshen(id uint64, header message.Header, reqTime, respTime time.Time) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Get(id)
	if !ok {
		return Entry{}, false
	}
	cost := e.cost - headerSize(e.Header) + headerSize(header)
	s.bytes += cost - e.cost
	e.cost = cost
	e.Header = header.Clone()
	e.RequestTime, e.ResponseTime = reqTime, respTime
	e.Fast = nil // the new fields may change the lifetime: SetFast again
	// Larger fields may pass the bound: evict others (e is the most
	// recently used).
	for s.bytes > s.opt.MaxBytes {
		k, _, ok := s.lru.RemoveOldest()
		if !ok {
			break
		}
		if k == id {
			return Entry{}, false // alone and over the bound
		}
	}
	c := *e
	c.Header = e.Header.Clone()
	return c, true
}

// SetFast marks the entry with this id as servable by Wedge itself
// (nil: no longer), and reports false when it is gone.
func (s *Store) SetFast(id uint64, f *Fast) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Peek(id)
	if ok {
		e.Fast = f
	}
	return ok
}

// Purge removes every variant stored under key and returns how many.
func (s *Store) Purge(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(slices.Clone(s.keys[key]))
}

// PurgePrefix removes every entry whose primary key starts with prefix
// ("" removes everything) and returns how many.
func (s *Store) PurgePrefix(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var victims []*Entry
	for k, vs := range s.keys {
		if strings.HasPrefix(k, prefix) {
			victims = append(victims, vs...)
		}
	}
	return s.removeLocked(victims)
}

func (s *Store) removeLocked(victims []*Entry) int {
	s.purging = true
	for _, e := range victims {
		s.lru.Remove(e.ID)
	}
	s.purging = false
	return len(victims)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	n, b := int64(s.lru.Len()), s.bytes
	s.mu.Unlock()
	return Stats{Entries: n, Bytes: b, Stored: s.stored.Load(), Evicted: s.evicted.Load(), Purged: s.purged.Load()}
}

// Close removes the store's body files (disk mode) and empties it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purging = true
	s.lru.Purge()
	s.purging = false
	return nil
}
