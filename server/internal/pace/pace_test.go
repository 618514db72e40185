package pace

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// tcpPair returns both ends of a loopback TCP connection, with a small send
// buffer when small is set, so a peer that does not read blocks the writer quickly.
func tcpPair(t *testing.T, small bool) (writer, reader *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	writer, reader = c.(*net.TCPConn), r.c.(*net.TCPConn)
	if small {
		// Only the sender's buffer: a tiny receive window below the
		// loopback MSS stalls TCP in zero-window probes.
		writer.SetWriteBuffer(8 << 10)
	}
	t.Cleanup(func() { writer.Close(); reader.Close() })
	return writer, reader
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestWriter_StalledPeer: a peer that never reads makes Write fail with a
// timeout once Idle passes without progress.
func TestWriter_StalledPeer(t *testing.T) {
	wc, _ := tcpPair(t, true)
	var w Writer
	w.Reset(wc, 200*time.Millisecond, 0)
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(make([]byte, 64<<20))
		done <- err
	}()
	select {
	case err := <-done:
		if !isTimeout(err) {
			t.Fatalf("Write to a stalled peer: %v, want a timeout", err)
		}
		if errors.Is(err, ErrTooSlow) {
			t.Errorf("no MinRate was set, yet the error is ErrTooSlow")
		}
		if w.Written() <= 0 || w.Written() >= 64<<20 {
			t.Errorf("Written = %d", w.Written())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Write to a stalled peer never returned")
	}
}

// TestWriter_StalledPeerBuffers: the same for vectored writes and files.
func TestWriter_StalledPeerBuffers(t *testing.T) {
	t.Run("buffers", func(t *testing.T) {
		wc, _ := tcpPair(t, true)
		var w Writer
		w.Reset(wc, 200*time.Millisecond, 0)
		bufs := net.Buffers{make([]byte, 32<<20), make([]byte, 32<<20)}
		_, err := w.WriteBuffers(&bufs)
		if !isTimeout(err) {
			t.Fatalf("WriteBuffers: %v, want a timeout", err)
		}
	})
	t.Run("file", func(t *testing.T) {
		wc, _ := tcpPair(t, true)
		f := tempFile(t, make([]byte, 32<<20))
		var w Writer
		w.Reset(wc, 200*time.Millisecond, 0)
		_, err := w.WriteFile(f, 0, 32<<20)
		if !isTimeout(err) {
			t.Fatalf("WriteFile: %v, want a timeout", err)
		}
	})
}

// slowReader reads from c in pieces of n bytes with a pause between them
// until it has read total bytes or the connection fails, and returns what
// it read.
func slowReader(c net.Conn, n int, pause time.Duration, total int) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		var got []byte
		buf := make([]byte, n)
		for len(got) < total {
			m, err := c.Read(buf)
			got = append(got, buf[:m]...)
			if err != nil {
				break
			}
			time.Sleep(pause)
		}
		out <- got
	}()
	return out
}

// TestWriter_MinRate: a slow peer keeps the connection while its average
// rate stays above MinRate, and is cut off with ErrTooSlow when it falls
// below.
func TestWriter_MinRate(t *testing.T) {
	t.Run("above", func(t *testing.T) {
		wc, rc := tcpPair(t, true)
		const total = 4 << 20
		// 64 KiB every 5 ms is ~13 MB/s, far above 10 KB/s; the writer
		// still blocks on the peer many times (and its deadline passes)
		// before it is done.
		got := slowReader(rc, 64<<10, 5*time.Millisecond, total)
		var w Writer
		w.Reset(wc, 500*time.Millisecond, 10<<10)
		src := pattern(total)
		n, err := w.Write(src)
		if err != nil || n != total {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if b := <-got; !bytes.Equal(b, src) {
			t.Fatalf("peer got %d bytes, not what was written", len(b))
		}
	})
	t.Run("below", func(t *testing.T) {
		wc, rc := tcpPair(t, true)
		// 512 bytes every 20 ms is ~25 KB/s, far below 10 MB/s.
		slowReader(rc, 512, 20*time.Millisecond, 1<<30)
		var w Writer
		w.Reset(wc, 100*time.Millisecond, 10<<20)
		_, err := w.Write(make([]byte, 16<<20))
		if !errors.Is(err, ErrTooSlow) {
			t.Fatalf("Write to a too slow peer: %v, want ErrTooSlow", err)
		}
		if !isTimeout(err) {
			t.Error("ErrTooSlow is not a net.Error timeout")
		}
	})
}

func tempFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "pace")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestWriter_WriteSections writes a head and a mix of memory and file
// sections (the file ones through sendfile) over loopback TCP and checks
// the peer receives them byte for byte, in order.
func TestWriter_WriteSections(t *testing.T) {
	fileData := pattern(3 << 20)
	f := tempFile(t, fileData)
	mem := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	tests := []struct {
		name string
		head []byte
		secs []message.Section
	}{
		{"memory only", []byte("HEAD\r\n"), []message.Section{{Data: mem(10, 'a')}, {Data: mem(100<<10, 'b')}}},
		{"file only", nil, []message.Section{{File: f, Offset: 0, Length: int64(len(fileData))}}},
		{"head then file", []byte("HTTP/1.1 200 OK\r\n\r\n"), []message.Section{{File: f, Offset: 17, Length: 1 << 20}}},
		{"mixed", []byte("H"), []message.Section{
			{Data: mem(5, 'x')},
			{File: f, Offset: 1000, Length: 70000},
			{Data: mem(3, 'y')}, {Data: nil}, {Data: mem(40<<10, 'z')},
			{File: f, Offset: 0, Length: 1},
			{File: f, Offset: int64(len(fileData)) - 5, Length: 5},
			{Data: mem(1, 'e')},
		}},
		{"many memory sections", nil, func() []message.Section {
			var s []message.Section
			for i := range 40 { // more than the 16 a batch holds without growing
				s = append(s, message.Section{Data: mem(i+1, byte('A'+i%26))})
			}
			return s
		}()},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		for _, maxWrite := range []int{0, 16 << 10} {
			t.Run(fmt.Sprintf("%s/MaxWrite=%d", tt.name, maxWrite), func(t *testing.T) {
				testWriteSections(t, fileData, tt.head, tt.secs, maxWrite)
			})
		}
	}
}

// pieceConn fails the test on a write longer than max, as a stand-in for a
// *tls.Conn (which has neither writev nor sendfile).
type pieceConn struct {
	net.Conn
	t      *testing.T
	max    int
	writes int
}

func (c *pieceConn) Write(p []byte) (int, error) {
	if len(p) > c.max {
		c.t.Errorf("a write of %d bytes, more than MaxWrite %d", len(p), c.max)
	}
	c.writes++
	return c.Conn.Write(p)
}

func testWriteSections(t *testing.T, fileData, head []byte, secs []message.Section, maxWrite int) {
	tcp, rc := tcpPair(t, false)
	var wc net.Conn = tcp
	pc := &pieceConn{Conn: tcp, t: t, max: maxWrite}
	if maxWrite > 0 {
		wc = pc
	}
	want := append([]byte(nil), head...)
	for _, s := range secs {
		if s.File != nil {
			want = append(want, fileData[s.Offset:s.Offset+s.Length]...)
		} else {
			want = append(want, s.Data...)
		}
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(rc)
		got <- b
	}()
	var w Writer
	w.Reset(wc, 5*time.Second, 0)
	w.MaxWrite = maxWrite
	n, err := w.WriteSections(head, secs)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) || w.Written() != n {
		t.Errorf("WriteSections = %d, Written %d, want %d", n, w.Written(), len(want))
	}
	if maxWrite > 0 && len(want) > 0 && len(want) <= maxWrite && pc.writes != 1 {
		t.Errorf("%d writes for %d bytes: small sections were not coalesced", pc.writes, len(want))
	}
	tcp.CloseWrite()
	b := <-got
	if !bytes.Equal(b, want) {
		t.Fatalf("peer got %d bytes (sha %x), want %d (sha %x)", len(b), sha256.Sum256(b), len(want), sha256.Sum256(want))
	}
}

func TestWriter_WriteFileShort(t *testing.T) {
	for _, maxWrite := range []int{0, 16} {
		wc, rc := tcpPair(t, false)
		go io.Copy(io.Discard, rc)
		f := tempFile(t, pattern(100))
		var w Writer
		w.Reset(wc, time.Second, 0)
		w.MaxWrite = maxWrite
		n, err := w.WriteFile(f, 50, 100)
		if !errors.Is(err, io.ErrUnexpectedEOF) || n != 50 {
			t.Errorf("MaxWrite %d: WriteFile past the end = %d, %v; want 50, io.ErrUnexpectedEOF", maxWrite, n, err)
		}
	}
}

// TestReader_Timeout: a peer that sends nothing fails the read after Idle.
func TestReader_Timeout(t *testing.T) {
	wc, rc := tcpPair(t, false)
	wc.Write([]byte("abc"))
	var r Reader
	r.Reset(rc.SetReadDeadline, rc, 150*time.Millisecond, 0)
	buf := make([]byte, 10)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("first Read = %q, %v", buf[:n], err)
	}
	start := time.Now()
	_, err = r.Read(buf)
	if !isTimeout(err) {
		t.Fatalf("Read from a silent peer: %v, want a timeout", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Errorf("timed out before Idle")
	}
}

// TestReader_MinRate: a peer that trickles bytes keeps the read alive only
// while its average rate stays above MinRate.
func TestReader_MinRate(t *testing.T) {
	trickle := func(c net.Conn, piece int, pause time.Duration, stop <-chan struct{}) {
		go func() {
			p := pattern(piece)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(p); err != nil {
					return
				}
				time.Sleep(pause)
			}
		}()
	}
	t.Run("below", func(t *testing.T) {
		wc, rc := tcpPair(t, false)
		stop := make(chan struct{})
		defer close(stop)
		trickle(wc, 1, 10*time.Millisecond, stop) // ~100 B/s
		var r Reader
		r.Reset(rc.SetReadDeadline, rc, 100*time.Millisecond, 1<<20)
		buf := make([]byte, 1024)
		var err error
		for i := 0; i < 10000 && err == nil; i++ {
			_, err = r.Read(buf)
		}
		if !errors.Is(err, ErrTooSlow) {
			t.Fatalf("Read from a trickling peer: %v, want ErrTooSlow", err)
		}
	})
	t.Run("above", func(t *testing.T) {
		wc, rc := tcpPair(t, false)
		const total = 2 << 20
		src := pattern(total)
		go func() {
			p := src
			for len(p) > 0 {
				n := min(len(p), 32<<10)
				wc.Write(p[:n])
				p = p[n:]
				time.Sleep(time.Millisecond)
			}
			wc.CloseWrite()
		}()
		var r Reader
		r.Reset(rc.SetReadDeadline, rc, time.Second, 10<<10)
		b, err := io.ReadAll(&r)
		if err != nil || !bytes.Equal(b, src) {
			t.Fatalf("ReadAll = %d bytes, %v", len(b), err)
		}
	})
	t.Run("no limits", func(t *testing.T) {
		var r Reader
		r.Reset(nil, bytes.NewReader([]byte("hello")), 0, 0)
		b, err := io.ReadAll(&r)
		if err != nil || string(b) != "hello" {
			t.Fatalf("ReadAll = %q, %v", b, err)
		}
	})
}

func BenchmarkWriteSections(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n")
	secs := []message.Section{{Data: make([]byte, 8192)}, {Data: make([]byte, 8192)}}
	var w Writer
	b.SetBytes(int64(len(head) + 16384))
	b.ReportAllocs()
	for b.Loop() {
		w.Reset(c, time.Minute, 0)
		if _, err := w.WriteSections(head, secs); err != nil {
			b.Fatal(err)
		}
	}
}
