package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/testenv"
)

// The attack of TestSlowClients, after the reference benchmark's
// slowclients.sh (slowhttptest -H, -B and -X) at a size a test can afford.
const (
	lorisConns   = 500             // slowloris: a partial head, one more field line every lorisEvery
	lorisEvery   = 5 * time.Second //
	bodyConns    = 100             // slow body: POST /upload, Content-Length 1 MiB, bodyBytes every second
	bodyBytes    = 100             //
	readerConns  = 50              // slow read: GET /big of readerSize bytes through a 4 KiB receive buffer
	readerSize   = 8 << 20         //
	readerRcvbuf = 4 << 10         //
	readerChunk  = 1 << 10         // bytes read every readerEvery (4 KiB/s)
	readerEvery  = 250 * time.Millisecond

	legitEvery   = 200 * time.Millisecond // a normal GET / starts this often
	legitTimeout = 5 * time.Second        // and gives up after this
)

// TestSlowClients is the first must-show: while slowloris,
// slow-body and slow-read attackers hold hundreds of connections, a normal
// client's requests through Wedge all succeed, each well under a second;
// the same attack aimed straight at Gunicorn (2 sync workers) starves it.
func TestSlowClients(t *testing.T) {
	testenv.Short(t, "runs a slow-client attack for about a minute")
	raiseFileLimit(t, 4*(lorisConns+bodyConns+readerConns)+1024)

	t.Run("through Wedge", func(t *testing.T) {
		g := startGunicorn(t, 2)
		// Default limits: client_header_timeout, client_body_timeout and
		// send_timeout are 60 s, longer than the attack, so Wedge holds
		// every attacking connection for the whole test.
		w := startWedge(t, g.Addr, nil)
		assertServing(t, w)

		a := launchAttack(t, w.Addr)
		defer a.stop()
		// Wedge answers a slow reader only once it has the whole response:
		// when every one has its first bytes, Gunicorn is done with them.
		a.waitReaders(t, readerConns, 60*time.Second)
		res := legitLoop(w.URL("/"), 20*time.Second)
		held := a.held()
		a.stop()

		s := summarize(res)
		t.Logf("through Wedge: %s; attack connections held at the end: %d of %d", s, held, a.dialed.Load())
		if s.ok != s.n || s.n == 0 {
			t.Errorf("%d of %d normal requests failed: %v", s.n-s.ok, s.n, s.errs)
		}
		if s.max >= time.Second {
			t.Errorf("slowest normal request took %v, want < 1s", s.max)
		}
		if held < int(a.dialed.Load()) {
			t.Errorf("only %d of %d attack connections were still held at the end: the attack was not sustained", held, a.dialed.Load())
		}
		assertServing(t, w)
		w.assertTempEmpty(t)
	})

	t.Run("straight at Gunicorn", func(t *testing.T) {
		g := startGunicorn(t, 2)
		a := launchAttack(t, g.Addr)
		defer a.stop()
		time.Sleep(2 * time.Second) // let the workers pick up attackers
		res := legitLoop("http://"+g.Addr+"/", 10*time.Second)
		held := a.held()
		a.stop()

		s := summarize(res)
		t.Logf("straight at Gunicorn: %s; attack connections held at the end: %d of %d", s, held, a.dialed.Load())
		if bad := s.n - s.fast; bad*2 <= s.n {
			t.Errorf("only %d of %d normal requests failed or took >= 1s; the attack should starve Gunicorn", bad, s.n)
		}
	})
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to at least n (at most the
// hard limit) for the test.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	old := lim
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raising RLIMIT_NOFILE to %d: %v", lim.Cur, err)
	}
	if lim.Cur < n {
		t.Logf("RLIMIT_NOFILE is %d (hard limit), wanted %d", lim.Cur, n)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// attack is the set of attacking connections against one address.
type attack struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn

	dialed    atomic.Int32 // connections opened
	lost      atomic.Int32 // connections the server closed or reset
	readersUp atomic.Int32 // slow readers that got their first bytes
	stopOnce  sync.Once
}

// launchAttack opens every attacking connection to addr, sends each its
// first bytes, and returns while they go on in the background.
func launchAttack(t *testing.T, addr string) *attack {
	t.Helper()
	a := &attack{}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	var ready sync.WaitGroup
	start := func(n int, dialer *net.Dialer, run func(i int, c net.Conn)) {
		for i := range n {
			ready.Add(1)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				c, err := dialer.DialContext(a.ctx, "tcp", addr)
				ready.Done()
				if err != nil {
					return
				}
				a.mu.Lock()
				if a.ctx.Err() != nil {
					a.mu.Unlock()
					c.Close()
					return
				}
				a.conns = append(a.conns, c)
				a.mu.Unlock()
				a.dialed.Add(1)
				run(i, c)
			}()
		}
	}
	plain := &net.Dialer{Timeout: 10 * time.Second}
	smallRcvbuf := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readerRcvbuf)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	start(lorisConns, plain, a.slowloris)
	start(bodyConns, plain, a.slowBody)
	start(readerConns, smallRcvbuf, a.slowReader)
	ready.Wait()
	if got, want := int(a.dialed.Load()), lorisConns+bodyConns+readerConns; got < want {
		t.Logf("only %d of %d attack connections opened", got, want)
	}
	return a
}

// every calls f every d (first after d) until the attack stops or f fails;
// a failure the attack did not cause counts as a lost connection.
func (a *attack) every(d time.Duration, f func(n int) error) {
	tk := time.NewTicker(d)
	defer tk.Stop()
	for n := 0; ; n++ {
		select {
		case <-a.ctx.Done():
			return
		case <-tk.C:
		}
		if err := f(n); err != nil {
			if a.ctx.Err() == nil {
				a.lost.Add(1)
			}
			return
		}
	}
}

// slowloris sends a request head that never ends.
func (a *attack) slowloris(i int, c net.Conn) {
	if _, err := fmt.Fprintf(c, "GET /?loris=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n", i); err != nil {
		a.lost.Add(1)
		return
	}
	// spread the attackers' writes over the interval
	time.Sleep(time.Duration(i) * lorisEvery / lorisConns)
	a.every(lorisEvery, func(n int) error {
		_, err := fmt.Fprintf(c, "X-Loris-%d: %d\r\n", n, i)
		return err
	})
}

// slowBody declares 1 MiB of body and sends bodyBytes of it a second.
func (a *attack) slowBody(i int, c net.Conn) {
	if _, err := fmt.Fprintf(c, "POST /upload?slowbody=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", i, 1<<20); err != nil {
		a.lost.Add(1)
		return
	}
	chunk := make([]byte, bodyBytes)
	a.every(time.Second, func(int) error {
		_, err := c.Write(chunk)
		return err
	})
}

// slowReader asks for a big response and reads it through a tiny receive
// buffer at readerChunk bytes per readerEvery.
func (a *attack) slowReader(i int, c net.Conn) {
	if _, err := fmt.Fprintf(c, "GET /big?n=%d&slowread=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", readerSize, i); err != nil {
		a.lost.Add(1)
		return
	}
	buf := make([]byte, readerChunk)
	first := true
	a.every(readerEvery, func(int) error {
		n, err := c.Read(buf)
		if n > 0 && first {
			first = false
			a.readersUp.Add(1)
		}
		return err // io.EOF too: the server gave up on us
	})
}

// waitReaders waits until n slow readers got their first bytes, or max.
func (a *attack) waitReaders(t *testing.T, n int, max time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max)
	for int(a.readersUp.Load()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d slow readers got a response within %v", a.readersUp.Load(), n, max)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// held returns how many attacking connections are still open.
func (a *attack) held() int { return int(a.dialed.Load() - a.lost.Load()) }

// stop ends every attacker and closes every connection; it may be called
// more than once.
func (a *attack) stop() {
	a.stopOnce.Do(func() {
		a.cancel()
		a.mu.Lock()
		for _, c := range a.conns {
			c.Close()
		}
		a.conns = nil
		a.mu.Unlock()
		a.wg.Wait()
	})
}

// legitResult is one normal request.
type legitResult struct {
	ok  bool
	d   time.Duration
	err string
}

// legitLoop starts a GET of url every legitEvery for dur, each on a new
// connection and bounded by legitTimeout (as the benchmark's curl loop),
// and returns every result once all are done.
func legitLoop(url string, dur time.Duration) []legitResult {
	c := normalClient(legitTimeout)
	var (
		mu  sync.Mutex
		res []legitResult
		wg  sync.WaitGroup
	)
	tk := time.NewTicker(legitEvery)
	defer tk.Stop()
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			body, err := get(c, url)
			r := legitResult{ok: err == nil && body == "ok", d: time.Since(t0)}
			if err != nil {
				r.err = err.Error()
			} else if body != "ok" {
				r.err = fmt.Sprintf("body %q", body)
			}
			mu.Lock()
			res = append(res, r)
			mu.Unlock()
		}()
		<-tk.C
	}
	wg.Wait()
	return res
}

// legitSummary is what TestSlowClients reports of a legitLoop.
type legitSummary struct {
	n, ok, fast   int           // requests, successes, successes under 1 s
	med, p90, max time.Duration // latency of the successes
	errs          map[string]int
}

func summarize(res []legitResult) legitSummary {
	s := legitSummary{n: len(res), errs: map[string]int{}}
	var ds []time.Duration
	for _, r := range res {
		if !r.ok {
			s.errs[r.err]++
			continue
		}
		s.ok++
		if r.d < time.Second {
			s.fast++
		}
		ds = append(ds, r.d)
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		s.med, s.p90, s.max = ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)-1]
	}
	return s
}

func (s legitSummary) String() string {
	return fmt.Sprintf("%d normal requests, %d ok (%.0f%%), %d under 1s; ok latency median %v, p90 %v, max %v; failures %v",
		s.n, s.ok, 100*float64(s.ok)/float64(max(s.n, 1)), s.fast,
		s.med.Round(time.Microsecond), s.p90.Round(time.Microsecond), s.max.Round(time.Microsecond), s.errs)
}
