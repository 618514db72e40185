// Package pace writes to and reads from connections under nginx-style
// timeouts: a deadline between two successful operations (send_timeout,
// client_body_timeout, proxy_send_timeout), plus an optional minimum
// average rate, so a peer can be slow but never stall a connection forever.
//
// Writes keep the fast paths of the net package: vectored writes (writev)
// for memory and sendfile for file ranges, so the Conn given must be the
// raw *net.TCPConn or *net.UnixConn, not a wrapper. A *tls.Conn works too,
// with Writer.MaxWrite set (see there).
package pace

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// ErrTooSlow is returned when the peer moved bytes, but more slowly than
// the minimum rate. It is a net.Error whose Timeout() is true.
var ErrTooSlow error = tooSlow{}

type tooSlow struct{}

func (tooSlow) Error() string   { return "peer slower than the minimum rate" }
func (tooSlow) Timeout() bool   { return true }
func (tooSlow) Temporary() bool { return false }

// Writer writes to Conn with Idle as the longest wait between two writes
// that make progress, and MinRate (bytes per second, 0 for none) as the
// lowest average rate once Idle has passed since the first write.
type Writer struct {
	Conn    net.Conn
	Idle    time.Duration
	MinRate int64
	// MaxWrite, when positive, splits every write into pieces of at most
	// MaxWrite bytes, each under a deadline of its own, and checks MinRate
	// before each piece. It is for connections on which a write that
	// passed its deadline cannot be resumed (crypto/tls: "after a Write
	// has timed out, the TLS state is corrupt"), so Idle still bounds the
	// wait between two pieces rather than a whole response. Such
	// connections get no writev or sendfile: sections are copied through a
	// pooled buffer of MaxWrite bytes (at most 64 KiB).
	MaxWrite int

	start   time.Time
	written int64
}

// Reset prepares w for a new response on conn.
func (w *Writer) Reset(conn net.Conn, idle time.Duration, minRate int64) {
	*w = Writer{Conn: conn, Idle: idle, MinRate: minRate}
}

// Written returns the bytes written since Reset.
func (w *Writer) Written() int64 { return w.written }

func (w *Writer) arm() {
	now := time.Now()
	if w.start.IsZero() {
		w.start = now
	}
	if w.Idle > 0 {
		w.Conn.SetWriteDeadline(now.Add(w.Idle))
	}
}

// retry decides, after a write that hit its deadline, whether to go on:
// only when that write moved bytes and the average rate is not below the
// minimum.
func (w *Writer) retry(err error, progress int64) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || progress == 0 {
		return false
	}
	if w.MinRate > 0 {
		elapsed := time.Since(w.start)
		if elapsed > w.Idle && float64(w.written) < float64(w.MinRate)*elapsed.Seconds() {
			return false
		}
	}
	return true
}

func (w *Writer) fail(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && w.MinRate > 0 {
		elapsed := time.Since(w.start)
		if elapsed > w.Idle && float64(w.written) < float64(w.MinRate)*elapsed.Seconds() {
			return ErrTooSlow
		}
	}
	return err
}

// checkRate fails with ErrTooSlow when, Idle after the first write, the
// average rate is below MinRate. Only pieces of MaxWrite use it: a whole
// write is checked when its deadline passes (retry).
func (w *Writer) checkRate() error {
	if w.MinRate > 0 && !w.start.IsZero() {
		if el := time.Since(w.start); el > w.Idle && float64(w.written) < float64(w.MinRate)*el.Seconds() {
			return ErrTooSlow
		}
	}
	return nil
}

// Write writes all of p.
func (w *Writer) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		q := p
		if w.MaxWrite > 0 {
			if err := w.checkRate(); err != nil {
				return total, err
			}
			if len(q) > w.MaxWrite {
				q = q[:w.MaxWrite]
			}
		}
		w.arm()
		n, err := w.Conn.Write(q)
		total += n
		w.written += int64(n)
		p = p[n:]
		if err != nil {
			if w.retry(err, int64(n)) {
				continue
			}
			return total, w.fail(err)
		}
	}
	return total, nil
}

// WriteBuffers writes all of bufs with vectored writes. It consumes bufs.
func (w *Writer) WriteBuffers(bufs *net.Buffers) (int64, error) {
	var total int64
	if w.MaxWrite > 0 {
		return w.writeCoalesced(bufs)
	}
	for len(*bufs) > 0 {
		w.arm()
		n, err := bufs.WriteTo(w.Conn)
		total += n
		w.written += n
		if err != nil {
			if w.retry(err, n) {
				continue
			}
			return total, w.fail(err)
		}
	}
	return total, nil
}

// WriteFile writes n bytes of f from offset off, with sendfile where the
// connection supports it.
func (w *Writer) WriteFile(f *os.File, off, n int64) (int64, error) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	if w.MaxWrite > 0 {
		return w.copyFile(f, n)
	}
	lr := &io.LimitedReader{R: f, N: n}
	rf, _ := w.Conn.(io.ReaderFrom)
	var total int64
	for lr.N > 0 {
		w.arm()
		var m int64
		var err error
		if rf != nil {
			m, err = rf.ReadFrom(lr)
		} else {
			m, err = io.Copy(w.Conn, lr)
		}
		total += m
		w.written += m
		if err != nil {
			if w.retry(err, m) {
				continue
			}
			return total, w.fail(err)
		}
		if m == 0 && lr.N > 0 {
			return total, io.ErrUnexpectedEOF // the file is shorter than said
		}
	}
	return total, nil
}

// writeCoalesced writes bufs in pieces of MaxWrite, copying small buffers
// together first so that a head and a short body make one write (one TLS
// record) instead of one each. It consumes bufs.
func (w *Writer) writeCoalesced(bufs *net.Buffers) (int64, error) {
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := (*bp)[:0:min(len(*bp), w.MaxWrite)]
	var total int64
	flush := func() error {
		n, err := w.Write(buf)
		total += int64(n)
		buf = buf[:0]
		return err
	}
	for len(*bufs) > 0 {
		b := (*bufs)[0]
		switch {
		case len(buf)+len(b) <= cap(buf):
			buf = append(buf, b...)
			*bufs = (*bufs)[1:]
		case len(buf) > 0:
			if err := flush(); err != nil {
				return total, err
			}
		default: // larger than a piece: no copy
			n, err := w.Write(b)
			total += int64(n)
			if err != nil {
				return total, err
			}
			*bufs = (*bufs)[1:]
		}
	}
	if len(buf) > 0 {
		if err := flush(); err != nil {
			return total, err
		}
	}
	return total, nil
}

// copyFile writes n bytes of f from its offset through a pooled buffer,
// in pieces of MaxWrite.
func (w *Writer) copyFile(f *os.File, n int64) (int64, error) {
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	if w.MaxWrite < len(buf) {
		buf = buf[:w.MaxWrite]
	}
	var total int64
	for total < n {
		m, err := f.Read(buf[:min(int64(len(buf)), n-total)])
		if m > 0 {
			k, werr := w.Write(buf[:m])
			total += int64(k)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, io.ErrUnexpectedEOF // the file is shorter than said
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// WriteSections writes head and then every section, batching the head with
// the memory sections that follow it into one vectored write.
func (w *Writer) WriteSections(head []byte, secs []message.Section) (int64, error) {
	var arr [16][]byte
	bufs := net.Buffers(arr[:0])
	if len(head) > 0 {
		bufs = append(bufs, head)
	}
	var total int64
	for _, s := range secs {
		if s.File == nil {
			if len(s.Data) > 0 {
				bufs = append(bufs, s.Data)
			}
			continue
		}
		if len(bufs) > 0 {
			n, err := w.WriteBuffers(&bufs)
			total += n
			if err != nil {
				return total, err
			}
			bufs = arr[:0]
		}
		n, err := w.WriteFile(s.File, s.Offset, s.Length)
		total += n
		if err != nil {
			return total, err
		}
	}
	if len(bufs) > 0 {
		n, err := w.WriteBuffers(&bufs)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Reader reads from R with Idle as the longest wait for each read (set
// through SetDeadline, e.g. a net.Conn's SetReadDeadline) and MinRate as the
// lowest average rate once Idle has passed since the first read. Past
// either, Read fails with an error whose Timeout() is true.
type Reader struct {
	SetDeadline func(time.Time) error
	R           io.Reader
	Idle        time.Duration
	MinRate     int64

	start time.Time
	read  int64
}

// Reset prepares r for a new body.
func (r *Reader) Reset(setDeadline func(time.Time) error, src io.Reader, idle time.Duration, minRate int64) {
	*r = Reader{SetDeadline: setDeadline, R: src, Idle: idle, MinRate: minRate}
}

// Read reads from R under the deadlines.
func (r *Reader) Read(p []byte) (int, error) {
	now := time.Now()
	if r.start.IsZero() {
		r.start = now
	} else if r.MinRate > 0 {
		if elapsed := now.Sub(r.start); elapsed > r.Idle && float64(r.read) < float64(r.MinRate)*elapsed.Seconds() {
			return 0, ErrTooSlow
		}
	}
	if r.Idle > 0 {
		r.SetDeadline(now.Add(r.Idle))
	}
	n, err := r.R.Read(p)
	r.read += int64(n)
	return n, err
}
