package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/testenv"
)

// gunicornInstall is what to install when gunicorn or Flask is missing.
const gunicornInstall = "apt-get install gunicorn python3-flask"

// gunicornApp is a running Gunicorn serving testdata/app.py.
type gunicornApp struct {
	// Addr is the 127.0.0.1:port it listens on.
	Addr string
	// AccessLog is the path of its access log (one line per request,
	// with the request line).
	AccessLog string
	// logPath is its stdout and stderr.
	logPath string
	// stop ends it (idempotent); t.Cleanup calls it too.
	stop func()
}

// Stop stops Gunicorn now, as a crashed or restarting app server: its
// port refuses connections afterwards.
func (g *gunicornApp) Stop() { g.stop() }

// startGunicorn starts `gunicorn --workers N --worker-class sync --timeout
// 120 app:app` in testdata on a free port, in a process group of its own,
// and waits (at most 20 s) until GET / answers "ok". It is stopped in
// t.Cleanup: SIGTERM to its PID, then SIGKILL to its group after 5 s. It
// skips (fails under WEDGE_REQUIRE_ALL=1) when gunicorn or Flask is
// missing.
func startGunicorn(t *testing.T, workers int) *gunicornApp {
	t.Helper()
	bin := testenv.LookPath(t, "gunicorn", gunicornInstall)
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		g, retry := tryGunicorn(t, bin, dir, workers, attempt)
		if g != nil {
			return g
		}
		if !retry || attempt == 2 {
			t.Fatalf("gunicorn did not start")
		}
	}
}

// tryGunicorn makes one attempt; retry reports a port clash.
func tryGunicorn(t *testing.T, bin, dir string, workers, attempt int) (g *gunicornApp, retry bool) {
	t.Helper()
	tmp := t.TempDir()
	g = &gunicornApp{
		Addr:      freeAddr(t),
		AccessLog: filepath.Join(tmp, "access.log"),
		logPath:   filepath.Join(tmp, "gunicorn.log"),
	}
	out, err := os.Create(g.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin,
		"--workers", strconv.Itoa(workers), "--worker-class", "sync",
		"--bind", g.Addr, "--timeout", "120", "--graceful-timeout", "2",
		"--access-logfile", g.AccessLog, "--chdir", dir, "app:app")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting gunicorn: %v", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			syscall.Kill(pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				syscall.Kill(pid, syscall.SIGKILL)
				<-exited
			}
			// workers stuck in a read outlive their arbiter: end the group we made
			syscall.Kill(-pid, syscall.SIGKILL)
		})
	}
	g.stop = stop

	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			stop()
			log, _ := os.ReadFile(g.logPath)
			if strings.Contains(string(log), "No module named 'flask'") {
				testenv.Missing(t, "Flask is not importable by "+bin, gunicornInstall)
			}
			if strings.Contains(string(log), "Address already in use") {
				t.Logf("gunicorn attempt %d: port %s taken, retrying", attempt, g.Addr)
				return nil, true
			}
			t.Fatalf("gunicorn exited at start:\n%s", log)
		default:
		}
		if body, err := get(c, "http://"+g.Addr+"/"); err == nil && body == "ok" {
			break
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(g.logPath)
			t.Fatalf("gunicorn did not answer within 20 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			log, _ := os.ReadFile(g.logPath)
			t.Logf("gunicorn %s log (last 4 KiB):\n%s", g.Addr, tail(log, 4096))
		}
	})
	return g, false
}

// accessLog returns Gunicorn's access log so far.
func (g *gunicornApp) accessLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(g.AccessLog)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago (the configuration refuses port 0).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get fetches url and returns its body; a status other than 200 is an
// error.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return string(b), nil
}

// The body pattern of testdata/app.py: byte i is patternBlock[i%patternPeriod].
const patternPeriod = 65521

var patternBlock = func() []byte {
	b := make([]byte, patternPeriod)
	for j := range b {
		b[j] = byte((uint64(j) * 2654435761) >> 13)
	}
	return b
}()

// patternReader yields the first n bytes of the pattern, in reads of
// varying size.
type patternReader struct {
	off, n int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if left := r.n - r.off; int64(len(p)) > left {
		p = p[:left]
	}
	total := 0
	for len(p) > 0 {
		i := r.off % patternPeriod
		k := copy(p, patternBlock[i:])
		p = p[k:]
		r.off += int64(k)
		total += k
	}
	return total, nil
}

// patternSHA256 returns the hex SHA-256 of the first n bytes of the
// pattern, computed once per n.
func patternSHA256(n int64) string {
	if s, ok := patternSums.Load(n); ok {
		return s.(string)
	}
	h := sha256.New()
	io.Copy(h, &patternReader{n: n})
	s := hex.EncodeToString(h.Sum(nil))
	patternSums.Store(n, s)
	return s
}

var patternSums sync.Map // int64 -> string
