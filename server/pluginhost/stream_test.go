package pluginhost

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// runRequest takes one request through every phase and returns what the
// plugins made of it.
type result struct {
	reqOut, bodyOut, respOut, respBodyOut Outcome
	req                                   *message.Request
	resp                                  *message.Response
	reqBody, respBody                     string
	upstream                              string
}

func runRequest(t testing.TB, c *Chain, path, body string) result {
	t.Helper()
	ctx := context.Background()
	s := c.NewStream(&StreamInfo{ID: "r", DefaultUpstream: "app"})
	defer s.Finish(ctx)
	var r result
	r.req = newRequest(path)
	r.req.ContentLength = int64(len(body))
	r.reqOut = s.OnRequestHeaders(ctx, r.req)
	r.upstream = s.Upstream()
	r.resp = newResponse()
	rb := &memBody{b: []byte("content")}
	if r.reqOut.Err != nil {
		return r
	}
	if r.reqOut.Local == nil {
		if body != "" {
			b := &memBody{b: []byte(body)}
			r.bodyOut = s.OnRequestBody(ctx, r.req, b)
			r.reqBody = string(b.b)
		}
	} else {
		r.resp.Status = r.reqOut.Local.Status
		r.resp.Header = r.reqOut.Local.Header.Clone()
		rb.b = r.reqOut.Local.Body
	}
	r.respOut = s.OnResponseHeaders(ctx, r.resp)
	r.respBodyOut = s.OnResponseBody(ctx, r.resp, rb)
	r.respBody = string(rb.b)
	return r
}

func TestStream_Phases(t *testing.T) {
	h := newTestHost(t, Config{})
	c := newTestChain(t, h, watSpec("filter", "filter"))
	r := runRequest(t, c, "/", "abc")
	if r.reqOut != (Outcome{}) || r.bodyOut != (Outcome{}) || r.respOut != (Outcome{}) || r.respBodyOut != (Outcome{}) {
		t.Fatalf("outcomes %+v %+v %+v %+v", r.reqOut, r.bodyOut, r.respOut, r.respBodyOut)
	}
	if r.req.Header.Get("x-wat") != "1" {
		t.Errorf("request header = %v", r.req.Header)
	}
	if r.reqBody != "abc!" {
		t.Errorf("request body = %q, want abc!", r.reqBody)
	}
	if r.resp.Header.Get("x-wat-resp") != "1" {
		t.Errorf("response header = %v", r.resp.Header)
	}
	if r.respBody != "!content" {
		t.Errorf("response body = %q, want !content", r.respBody)
	}
	if !c.WantsRequestBody() || !c.WantsResponseBody() {
		t.Error("the chain does not want the bodies")
	}

	r = runRequest(t, c, "/upstream", "")
	if r.upstream != "api" {
		t.Errorf("wedge.upstream = %q, want api", r.upstream)
	}
	r = runRequest(t, c, "/close", "")
	if !errors.Is(r.reqOut.Err, ErrStreamClosed) {
		t.Errorf("proxy_close_stream: %v, want ErrStreamClosed", r.reqOut.Err)
	}
	r = runRequest(t, c, "/badptr", "")
	if r.reqOut.Err != nil || r.req.Header.Get("x-badptr") != "ok" {
		t.Errorf("a bad pointer: %v, header %v", r.reqOut.Err, r.req.Header)
	}
}

func TestStream_LocalResponse(t *testing.T) {
	h := newTestHost(t, Config{})
	// Two copies of the filter: the first answers /local, so the second
	// never sees the request and no response phase runs.
	a, b := watSpec("a", "filter"), watSpec("b", "filter")
	c := newTestChain(t, h, a, b)
	r := runRequest(t, c, "/local", "")
	lr := r.reqOut.Local
	if lr == nil {
		t.Fatalf("no local response: %+v", r.reqOut)
	}
	if lr.Status != 403 || string(lr.Body) != "forbidden" || lr.Details != "denied" ||
		!slices.Equal(lr.Header, message.Header{{Name: "x-local", Value: "yes"}}) {
		t.Errorf("local response = %+v", lr)
	}
	if n := r.req.Header.Count("x-wat"); n != 1 {
		t.Errorf("x-wat added %d times; the second plugin ran", n)
	}
	if r.resp.Header.Has("x-wat-resp") {
		t.Errorf("response phases ran for the plugin that answered: %v", r.resp.Header)
	}

	// With a plugin before the one that answers, that plugin's response
	// phases run.
	go1 := goGuestSpec(t, "go")
	c2 := newTestChain(t, h, go1, watSpec("filter", "filter"))
	r = runRequest(t, c2, "/local", "")
	if r.reqOut.Local == nil || r.resp.Header.Get("x-go-resp") != "" || !r.resp.Header.Has("x-go-resp") || r.resp.Header.Has("x-wat-resp") {
		t.Errorf("local from the second plugin: %+v, response header %v", r.reqOut, r.resp.Header)
	}
}

func TestStream_ResponseOrder(t *testing.T) {
	h := newTestHost(t, Config{})
	g := goGuestSpec(t, "go")
	g.Configuration = []byte("cfg")
	c := newTestChain(t, h, watSpec("filter", "filter"), g)
	r := runRequest(t, c, "/", "")
	var names []string
	for _, f := range r.req.Header {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"User-Agent", "Accept", "x-wat", "x-go", "x-go-path"}) {
		t.Errorf("request phases not in chain order: %v", names)
	}
	names = nil
	for _, f := range r.resp.Header {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"Content-Type", "x-go-resp", "x-wat-resp"}) {
		t.Errorf("response phases not in reverse order: %v", names)
	}
	if r.resp.Header.Get("x-go-resp") != "cfg" {
		t.Errorf("plugin configuration not seen: %v", r.resp.Header)
	}
}

func TestStream_PauseAndHTTPCall(t *testing.T) {
	d := &fakeDispatcher{status: 201, body: "yes"}
	h := newTestHost(t, Config{Dispatcher: d})
	c := newTestChain(t, h, watSpec("filter", "filter"))
	r := runRequest(t, c, "/pause", "")
	if r.reqOut != (Outcome{}) {
		t.Fatalf("outcome %+v", r.reqOut)
	}
	if got := r.req.Header.Get("x-auth-status"); got != "201" {
		t.Errorf("x-auth-status = %q, want 201 (header %v)", got, r.req.Header)
	}
	d.mu.Lock()
	call := d.calls[0]
	d.mu.Unlock()
	if call.upstream != "auth" || call.req.Target != "/check" || call.req.Host != "auth" {
		t.Errorf("dispatched %+v", call)
	}
}

func TestStream_PauseGoGuest(t *testing.T) {
	d := &fakeDispatcher{status: 200, body: "fine"}
	h := newTestHost(t, Config{Dispatcher: d})
	c := newTestChain(t, h, goGuestSpec(t, "go"))
	r := runRequest(t, c, "/auth", "")
	if r.reqOut != (Outcome{}) || r.req.Header.Get("x-auth") != "200 fine" {
		t.Errorf("outcome %+v, header %v", r.reqOut, r.req.Header)
	}
	r = runRequest(t, c, "/deny", "")
	if r.reqOut.Local == nil || r.reqOut.Local.Status != 403 || string(r.reqOut.Local.Body) != "denied by go" {
		t.Errorf("deny: %+v", r.reqOut)
	}
	r = runRequest(t, c, "/", "make me loud")
	if r.reqBody != "MAKE ME LOUD" || r.req.Header.Get("x-go-path") != "/" {
		t.Errorf("body %q header %v", r.reqBody, r.req.Header)
	}
}

func TestStream_PauseTimeout(t *testing.T) {
	d := &fakeDispatcher{status: 200, delay: time.Hour}
	h := newTestHost(t, Config{Dispatcher: d})
	spec := watSpec("filter", "filter")
	spec.PauseTimeout = 50 * time.Millisecond
	c := newTestChain(t, h, spec)
	r := runRequest(t, c, "/pause", "")
	if !errors.Is(r.reqOut.Err, ErrPauseTimeout) {
		t.Fatalf("err = %v, want ErrPauseTimeout", r.reqOut.Err)
	}
	spec.Name, spec.FailOpen = "open", true
	c2 := newTestChain(t, h, spec)
	r = runRequest(t, c2, "/pause", "")
	if r.reqOut.Err != nil {
		t.Errorf("fail_open plugin still failed the request: %v", r.reqOut.Err)
	}

	// The context ending ends the wait too, and it is not the plugin's
	// failure.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s := c2.NewStream(nil)
	out := s.OnRequestHeaders(ctx, newRequest("/pause"))
	s.Finish(context.Background())
	if !errors.Is(out.Err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", out.Err)
	}
}

func TestStream_FinishCallsLog(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newTestHost(t, Config{Registerer: reg})
	c := newTestChain(t, h, watSpec("filter", "filter"))
	for range 3 {
		runRequest(t, c, "/", "")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "wedge_wat_requests_total" {
			n = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if n != 3 {
		t.Errorf("wat_requests_total = %v, want 3 (one proxy_on_log per stream)", n)
	}
}

func TestStream_ClosedChain(t *testing.T) {
	h := newTestHost(t, Config{})
	c, err := h.NewChain(context.Background(), []PluginSpec{watSpec("filter", "filter")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := c.NewStream(nil)
	if out := s.OnRequestHeaders(context.Background(), newRequest("/")); !errors.Is(out.Err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", out.Err)
	}
	s.Finish(context.Background())
}

// TestStream_ResumeRespond ends a plugin's pause from the embedder: Resume
// lets the request go on, Respond answers it; neither acts on a stream that
// is not paused.
func TestStream_ResumeRespond(t *testing.T) {
	d := &fakeDispatcher{status: 200, delay: time.Hour} // the plugin's call never answers
	h := newTestHost(t, Config{Dispatcher: d})
	c := newTestChain(t, h, watSpec("filter", "filter"))
	for _, respond := range []bool{false, true} {
		s := c.NewStream(nil)
		if s.Resume("filter") || s.Respond("filter", &LocalResponse{Status: 200}) {
			t.Fatal("woke a stream that is not paused")
		}
		d.mu.Lock()
		calls := len(d.calls)
		d.mu.Unlock()
		done := make(chan Outcome, 1)
		go func() { done <- s.OnRequestHeaders(context.Background(), newRequest("/pause")) }()
		// The embedder learns of the pause from the plugin (here: its HTTP
		// call reaching the dispatcher), never by polling a fresh stream.
		for i := 0; ; i++ {
			d.mu.Lock()
			n := len(d.calls)
			d.mu.Unlock()
			if n > calls {
				break
			}
			if i == 5000 {
				t.Fatal("the plugin never made its call")
			}
			time.Sleep(time.Millisecond)
		}
		woke := false
		for i := 0; i < 1000 && !woke; i++ {
			if respond {
				woke = s.Respond("filter", &LocalResponse{Status: 203})
			} else {
				woke = s.Resume("filter")
			}
			if !woke {
				time.Sleep(2 * time.Millisecond)
			}
		}
		if !woke {
			t.Fatal("the stream never paused")
		}
		out := <-done
		switch {
		case respond && (out.Local == nil || out.Local.Status != 203):
			t.Errorf("Respond: outcome %+v, want the local response", out)
		case !respond && out != (Outcome{}):
			t.Errorf("Resume: outcome %+v, want Continue", out)
		}
		if s.Resume("filter") || s.Resume("nosuch") {
			t.Error("woke a stream that is no longer paused")
		}
		s.Finish(context.Background())
	}
}
