package static

import (
	"crypto/rand"
	"errors"
	"html"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Serve resolves req into a response. req.Target is the origin-form target
// ("/static/a.css?v=1"); its path must be under the mount's prefix (as
// [Table.Match] ensures), or the answer is 404. Serve never returns nil and
// never fails: problems become error responses with a short text body.
// The caller must call Close on the result once it is written.
//
// For an X-Accel-Redirect, pass a request whose Target is the redirect URI
// and whose Header is the client's (so Range and conditionals apply), with
// Method GET, or HEAD for a HEAD request (as nginx does).
//
// # Notes
//
// Range applies to GET only (RFC 9110 §14.2), so a HEAD with Range gets
// the 200 head. When a precompressed sidecar is served and several ranges
// are asked for, the Range field is ignored (RFC 9110 §14.2 allows it):
// a multipart body whose parts are slices of a gzip stream, under a
// top-level Content-Encoding, is something clients do not agree on.
func (m *Mount) Serve(req *message.Request) *Response {
	raw, query, _ := strings.Cut(req.Target, "?")
	return m.serve(req, raw, query, raw, false)
}

// ServePath is like [Mount.Serve] for a mount chosen by a router rather
// than by its prefix: p is the URL path of the file inside the mount's
// root ("/a.css" is Root+"/a.css"; percent-encoded; the prefix is not
// looked at), and req.Target is the path the client asked for, used only
// where the client must see its own URL: the 301 that adds a directory's
// slash and a listing's title.
func (m *Mount) ServePath(req *message.Request, p string) *Response {
	raw, query, _ := strings.Cut(req.Target, "?")
	return m.serve(req, raw, query, p, true)
}

// serve resolves public (the client's path, decoded here) and inner (the
// file's URL path: public itself, or a path inside the root when
// inRoot).
func (m *Mount) serve(req *message.Request, raw, query, inner string, inRoot bool) *Response {
	head := req.Method == "HEAD"
	if req.Method != "GET" && !head {
		// RFC 9110 §15.5.6: a 405 must list the allowed methods.
		r := errorResponse(405, false)
		r.Header = append(r.Header, message.Field{Name: "Allow", Value: "GET, HEAD"})
		return r
	}
	clean, dirSlash, status := cleanPath(inner)
	if status != 0 {
		return errorResponse(status, head)
	}
	var rel string
	if inRoot {
		rel = strings.TrimPrefix(clean, "/")
		if rel == "" {
			rel = "."
		}
		if pub, _, st := cleanPath(raw); st == 0 {
			clean = pub // what the client sees
		} else {
			raw, clean = inner, inner
		}
	} else {
		var ok bool
		if rel, ok = m.rel(clean); !ok {
			return errorResponse(404, head)
		}
	}
	parent, base := path.Split(rel)
	if parent == "" {
		parent = "."
	} else {
		parent = parent[:len(parent)-1]
	}
	d, err := m.openDir(parent)
	if err != nil {
		return errorResponse(errStatus(err), head)
	}
	defer d.close()
	f, err := d.open(base)
	if err != nil {
		return errorResponse(errStatus(err), head)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return errorResponse(500, head)
	}
	if fi.IsDir() {
		if !dirSlash {
			// nginx: a directory named without its slash gets 301 to
			// the slashed URI, query kept.
			f.Close()
			return redirect(raw, clean, query, head)
		}
		return m.serveDir(req, head, d, base, rel, clean, f)
	}
	if !fi.Mode().IsRegular() || dirSlash {
		// nginx answers 404 for what is not a regular file (FIFOs,
		// devices, sockets) and for "file/".
		f.Close()
		return errorResponse(404, head)
	}
	return serveFile(req, head, d, base, f, fi)
}

// errStatus maps an error from opening a file to a status: 404 when it does
// not exist, is not reachable inside the root (a ".." or a symbolic link
// leading out) or is otherwise not servable; 403 when permission is denied
// (nginx); 500 when the server is short of resources or the mount closed.
func errStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 404
	case errors.Is(err, fs.ErrPermission):
		return 403
	case errors.Is(err, fs.ErrClosed), errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EIO):
		return 500
	}
	return 404
}

// dirRef is a directory under the mount's root through which names are
// opened, so that a file and its sidecars cost one lookup each rather than
// one walk of the whole path each.
type dirRef struct {
	r     *os.Root
	m     *Mount
	dir   string // relative to the mount's root; "." for the root
	owned bool   // r is a sub-root to close
}

func (m *Mount) openDir(dir string) (dirRef, error) {
	if dir == "." {
		return dirRef{r: m.root, m: m, dir: "."}, nil
	}
	r, err := m.root.OpenRoot(dir)
	if err != nil {
		return dirRef{}, err
	}
	return dirRef{r: r, m: m, dir: dir, owned: true}, nil
}

func (d dirRef) join(name string) string {
	if d.dir == "." {
		return name
	}
	return d.dir + "/" + name
}

// open opens name in d. A symbolic link may leave the sub-root and still
// stay inside the mount's root; for any error but "does not exist" the
// name is tried again from the mount's root, which alone decides what is
// reachable.
func (d dirRef) open(name string) (*os.File, error) {
	f, err := d.r.OpenFile(name, openFlags, 0)
	if err != nil && d.owned && !errors.Is(err, fs.ErrNotExist) {
		f, err = d.m.root.OpenFile(d.join(name), openFlags, 0)
	}
	return f, err
}

// stat is like open for Stat, following symbolic links inside the root.
func (d dirRef) stat(name string) (fs.FileInfo, error) {
	fi, err := d.r.Stat(name)
	if err != nil && d.owned && !errors.Is(err, fs.ErrNotExist) {
		fi, err = d.m.root.Stat(d.join(name))
	}
	return fi, err
}

// sub returns the directory name inside d.
func (d dirRef) sub(name string) (dirRef, error) {
	if name == "." || name == "" {
		return dirRef{r: d.r, m: d.m, dir: d.dir}, nil
	}
	r, err := d.r.OpenRoot(name)
	if err != nil && d.owned && !errors.Is(err, fs.ErrNotExist) {
		r, err = d.m.root.OpenRoot(d.join(name))
	}
	if err != nil {
		return dirRef{}, err
	}
	return dirRef{r: r, m: d.m, dir: d.join(name), owned: true}, nil
}

func (d dirRef) close() {
	if d.owned {
		d.r.Close()
	}
}

// redirect answers a directory named without its final slash with 301 to
// the slashed path, keeping the query (nginx does the same for a directory
// request).
func redirect(raw, clean, query string, head bool) *Response {
	var loc string
	if raw == clean {
		loc = raw + "/"
	} else {
		loc = escapePath(clean) + "/"
	}
	if query != "" && safeQuery(query) {
		loc += "?" + query
	}
	r := errorResponse(301, head)
	r.Header = append(r.Header, message.Field{Name: "Location", Value: loc})
	return r
}

// serveDir serves the directory rel (open as f, named base in d): its index
// file, else a listing when the mount browses, else 403 (nginx index,
// autoindex).
func (m *Mount) serveDir(req *message.Request, head bool, d dirRef, base, rel, clean string, f *os.File) *Response {
	sub, err := d.sub(base)
	if err == nil {
		idx, err := sub.open(m.index)
		if err == nil {
			ifi, err := idx.Stat()
			if err == nil && ifi.Mode().IsRegular() {
				f.Close()
				r := serveFile(req, head, sub, m.index, idx, ifi)
				sub.close()
				return r
			}
			idx.Close()
		}
		sub.close()
	}
	if !m.browse {
		f.Close()
		return errorResponse(403, head)
	}
	return m.listing(head, rel, clean, f)
}

// listing answers with an HTML list of the directory f (nginx autoindex):
// subdirectories first, then files, each group sorted by name; names are
// HTML-escaped and percent-encoded in links; directories end in "/".
// Entries that are neither regular files nor directories, and symbolic
// links that lead nowhere or out of the root, are left out. f is closed.
func (m *Mount) listing(head bool, rel, clean string, f *os.File) *Response {
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return errorResponse(500, head)
	}
	type entry struct {
		name string
		dir  bool
	}
	list := make([]entry, 0, len(ents))
	for _, e := range ents {
		t := e.Type()
		if t&fs.ModeSymlink != 0 {
			fi, err := m.root.Stat(path.Join(rel, e.Name()))
			if err != nil {
				continue
			}
			t = fi.Mode().Type()
		}
		if t != 0 && !t.IsDir() {
			continue
		}
		list = append(list, entry{name: e.Name(), dir: t.IsDir()})
	}
	slices.SortFunc(list, func(a, b entry) int {
		if a.dir != b.dir {
			if a.dir {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	title := clean
	if title != "/" {
		title += "/"
	}
	title = html.EscapeString(title)
	b := make([]byte, 0, 256+64*len(list))
	b = append(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of "...)
	b = append(b, title...)
	b = append(b, "</title></head>\n<body><h1>Index of "...)
	b = append(b, title...)
	b = append(b, "</h1><hr><pre>\n"...)
	if rel != "." {
		b = append(b, "<a href=\"../\">../</a>\n"...)
	}
	for _, e := range list {
		slash := ""
		if e.dir {
			slash = "/"
		}
		// "./" keeps a name like "a:b" from reading as a URI scheme.
		b = append(b, "<a href=\"./"...)
		b = append(b, html.EscapeString(url.PathEscape(e.name))...)
		b = append(b, slash...)
		b = append(b, "\">"...)
		b = append(b, html.EscapeString(e.name)...)
		b = append(b, slash...)
		b = append(b, "</a>\n"...)
	}
	b = append(b, "</pre><hr></body></html>\n"...)
	r := newResponse(200)
	r.Header = append(r.Header,
		message.Field{Name: "Content-Type", Value: "text/html; charset=utf-8"},
		message.Field{Name: "Content-Length", Value: strconv.Itoa(len(b))},
	)
	r.setBody(b, head)
	return r
}

// serveFile serves the regular file f (named base in d, described by fi),
// or a precompressed sidecar of it, with validators, preconditions and
// ranges. It takes ownership of f.
func serveFile(req *message.Request, head bool, d dirRef, base string, f *os.File, fi fs.FileInfo) *Response {
	ctype := contentType(base)

	// Select the representation: a sidecar in the client's order of
	// preference (RFC 9110 §12.5.3), else the file itself. Vary is sent
	// whenever a sidecar exists, served or not, since the choice then
	// depends on Accept-Encoding (RFC 9110 §12.5.5).
	var order [len(codings)]int
	enc := -1
	vary := false
	tried := 0
	var names [len(codings)]string
	if isSidecar(base) {
		tried = 1<<len(codings) - 1 // a sidecar has no sidecars
	} else {
		names = sidecarNames(base)
	}
	for _, j := range acceptedCodings(req.Header, &order) {
		if tried&(1<<j) != 0 {
			continue
		}
		tried |= 1 << j
		sf, err := d.open(names[j])
		if err != nil {
			continue
		}
		sfi, err := sf.Stat()
		if err != nil || !sfi.Mode().IsRegular() {
			sf.Close()
			continue
		}
		f.Close()
		f, fi, enc, vary = sf, sfi, j, true
		break
	}
	if !vary {
		for j := range codings {
			if tried&(1<<j) != 0 {
				continue
			}
			if sfi, err := d.stat(names[j]); err == nil && sfi.Mode().IsRegular() {
				vary = true
				break
			}
		}
	}

	size := fi.Size()
	sec := fi.ModTime().Unix()
	mod := time.Unix(sec, 0).UTC()

	// ETag, Last-Modified and the full Content-Length share one string.
	var buf [96]byte
	b := appendETag(buf[:0], sec, size)
	eEnd := len(b)
	b = mod.AppendFormat(b, timeFormat)
	lEnd := len(b)
	b = strconv.AppendInt(b, size, 10)
	s := string(b)
	etag, lastMod, fullLen := s[:eEnd], s[eEnd:lEnd], s[lEnd:]

	meta := repMeta{enc: enc, vary: vary}

	switch evalPreconditions(req.Header, etag, mod) {
	case condFailed:
		f.Close()
		r := errorResponse(412, head)
		meta.add(r)
		return r
	case condNotModified:
		// RFC 9110 §15.4.5: the fields a 200 would carry that describe
		// the representation's identity, no body and no length.
		f.Close()
		r := newResponse(304)
		r.Header = append(r.Header,
			message.Field{Name: "ETag", Value: etag},
			message.Field{Name: "Last-Modified", Value: lastMod},
		)
		if vary {
			r.Header = append(r.Header, message.Field{Name: "Vary", Value: "Accept-Encoding"})
		}
		return r
	}

	// RFC 9110 §13.2.2 step 5, §14.2: Range on GET, gated by If-Range.
	if req.Method == "GET" {
		if rv, n := fieldValue(req.Header, "Range"); n == 1 {
			ir, nIR := fieldValue(req.Header, "If-Range")
			if nIR == 0 || nIR == 1 && ifRangeAllows(ir, etag, mod) {
				var rbuf [4]byteRange
				if rs, ok := parseRange(rv, size, rbuf[:0]); ok {
					switch {
					case len(rs) == 0:
						f.Close()
						r := errorResponse(416, head)
						r.Header = append(r.Header, message.Field{Name: "Content-Range", Value: "bytes */" + fullLen})
						meta.add(r)
						return r
					case len(rs) == 1:
						return singleRange(f, rs[0], ctype, etag, lastMod, fullLen, meta)
					case enc < 0:
						return multiRange(f, rs, ctype, etag, lastMod, fullLen, meta)
					}
				}
			}
		}
	}

	r := newResponse(200)
	r.Header = append(r.Header,
		message.Field{Name: "Content-Type", Value: ctype},
		message.Field{Name: "Content-Length", Value: fullLen},
		message.Field{Name: "Last-Modified", Value: lastMod},
		message.Field{Name: "ETag", Value: etag},
		message.Field{Name: "Accept-Ranges", Value: "bytes"},
	)
	meta.add(r)
	r.ContentLength = size
	if head || size == 0 {
		f.Close()
		return r
	}
	r.file = f
	r.secs[0] = Section{File: f, Offset: 0, Length: size}
	r.Sections = r.secs[:1]
	return r
}

// sidecarNames returns base with each of the codings' suffixes, built with
// one allocation.
func sidecarNames(base string) (names [len(codings)]string) {
	var buf [192]byte
	b := buf[:0]
	var ends [len(codings)]int
	for j := range codings {
		b = append(b, base...)
		b = append(b, codings[j].suffix...)
		ends[j] = len(b)
	}
	s := string(b)
	start := 0
	for j := range codings {
		names[j] = s[start:ends[j]]
		start = ends[j]
	}
	return names
}

// isSidecar reports whether name ends in one of the sidecar suffixes.
func isSidecar(name string) bool {
	for j := range codings {
		if strings.HasSuffix(name, codings[j].suffix) {
			return true
		}
	}
	return false
}

// repMeta is what the selected representation adds to every response
// about it: its Content-Encoding, and Vary when a sidecar exists.
type repMeta struct {
	enc  int // index into codings, or -1
	vary bool
}

func (m repMeta) add(r *Response) {
	if m.enc >= 0 {
		r.Header = append(r.Header, message.Field{Name: "Content-Encoding", Value: codings[m.enc].token})
	}
	if m.vary {
		r.Header = append(r.Header, message.Field{Name: "Vary", Value: "Accept-Encoding"})
	}
}

// fieldValue returns the value of the last field called name and how many
// there are. Range and If-Range are singletons: with more than one, Range
// is ignored (RFC 9110 §5.3, §14.2).
func fieldValue(h message.Header, name string) (v string, n int) {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			v = h[i].Value
			n++
		}
	}
	return v, n
}

// singleRange answers 206 with one range (RFC 9110 §15.3.7.1).
func singleRange(f *os.File, rg byteRange, ctype, etag, lastMod, fullLen string, meta repMeta) *Response {
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], rg.length, 10)
	n := len(b)
	b = append(b, "bytes "...)
	b = appendRange(b, rg, fullLen)
	s := string(b)
	r := newResponse(206)
	r.Header = append(r.Header,
		message.Field{Name: "Content-Type", Value: ctype},
		message.Field{Name: "Content-Length", Value: s[:n]},
		message.Field{Name: "Content-Range", Value: s[n:]},
		message.Field{Name: "Last-Modified", Value: lastMod},
		message.Field{Name: "ETag", Value: etag},
	)
	meta.add(r)
	r.ContentLength = rg.length
	r.file = f
	r.secs[0] = Section{File: f, Offset: rg.start, Length: rg.length}
	r.Sections = r.secs[:1]
	return r
}

// appendRange appends "first-last/complete".
func appendRange(b []byte, rg byteRange, fullLen string) []byte {
	b = strconv.AppendInt(b, rg.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, rg.start+rg.length-1, 10)
	b = append(b, '/')
	return append(b, fullLen...)
}

// multiRange answers 206 with a multipart/byteranges body (RFC 9110
// §14.6, §15.3.7.2): each part has Content-Type and Content-Range, parts
// are separated by a random boundary. Sections alternate part heads held
// in memory and ranges of f, and end with the closing delimiter.
func multiRange(f *os.File, rs []byteRange, ctype, etag, lastMod, fullLen string, meta repMeta) *Response {
	boundary := rand.Text()
	secs := make([]Section, 0, 2*len(rs)+1)
	heads := make([]byte, 0, len(rs)*(len(boundary)+len(ctype)+128)+len(boundary)+8)
	var total int64
	for i, rg := range rs {
		start := len(heads)
		if i > 0 {
			heads = append(heads, "\r\n"...)
		}
		heads = append(heads, "--"...)
		heads = append(heads, boundary...)
		heads = append(heads, "\r\nContent-Type: "...)
		heads = append(heads, ctype...)
		heads = append(heads, "\r\nContent-Range: bytes "...)
		heads = appendRange(heads, rg, fullLen)
		heads = append(heads, "\r\n\r\n"...)
		secs = append(secs,
			Section{Data: heads[start:len(heads):len(heads)]},
			Section{File: f, Offset: rg.start, Length: rg.length},
		)
		total += int64(len(heads)-start) + rg.length
	}
	start := len(heads)
	heads = append(heads, "\r\n--"...)
	heads = append(heads, boundary...)
	heads = append(heads, "--\r\n"...)
	secs = append(secs, Section{Data: heads[start:]})
	total += int64(len(heads) - start)
	// Should heads have outgrown its capacity, earlier Data slices keep
	// pointing at the old array, which still holds their bytes.
	r := newResponse(206)
	r.Header = append(r.Header,
		message.Field{Name: "Content-Type", Value: "multipart/byteranges; boundary=" + boundary},
		message.Field{Name: "Content-Length", Value: strconv.FormatInt(total, 10)},
		message.Field{Name: "Last-Modified", Value: lastMod},
		message.Field{Name: "ETag", Value: etag},
	)
	meta.add(r)
	r.ContentLength = total
	r.file = f
	r.Sections = secs
	return r
}
