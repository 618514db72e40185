package plugintest

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, err string
	}{
		{"minimal", "cases: [{request: {path: /}}]", ""},
		{"full", `plugin: x.wasm
name: x
config: {a: [1, 2]}
vm_config: "v"
callback_timeout: 2s
pause_timeout: 1m
pool_size: 2
fail_open: true
upstreams: {app: {status: 201, headers: {a: b}, body: ""}, auth: {down: true}}
default_upstream: app
cases:
  - name: one
    request: {method: POST, path: /a, host: h, headers: {x: y}, body: b}
    upstreams: {auth: {status: 403}}
    expect: {status: 200, upstream: none, local: false, request_headers: {a: null}, response_headers: {b: c}, body: "", calls: [auth], logs: [x]}
`, ""},
		{"empty", "", "empty test file"},
		{"no cases", "plugin: x.wasm", "no cases"},
		{"unknown key", "cases: [{request: {path: /}}]\nplugins: x", "line 2: field plugins not found"},
		{"unknown key in a case", "cases:\n  - request: {path: /}\n    expects: {}", "line 3: field expects not found"},
		{"bad pool name", "upstreams: {App: {}}\ncases: [{request: {}}]", `upstream "App"`},
		{"case pool not declared", "upstreams: {app: {}}\ncases: [{upstreams: {auth: {}}}]", `upstream "auth" is not among`},
		{"default app may be overridden", "cases: [{upstreams: {app: {status: 500}}}]", ""},
		{"bad duration", "pause_timeout: soon\ncases: [{}]", "parsing duration"},
		{"bad status", "cases: [{expect: {status: 1000}}]", "out of range"},
		{"not a map", "- a\n- b", "parsing test file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Parse: %v, want an error containing %q", err, tt.err)
			case tt.err == "" && len(f.Cases) == 0:
				t.Fatal("no cases parsed")
			}
		})
	}
}

func TestLoad_RelativePlugin(t *testing.T) {
	f, err := Load("testdata/router.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := "../../sdk/wedgetest/testdata/router.wasm"; f.Plugin != want {
		t.Errorf("plugin %q, want it relative to the file (%q)", f.Plugin, want)
	}
	if _, err := Load("testdata/missing.yaml"); err == nil || !strings.Contains(err.Error(), "reading test file") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestDiffFields(t *testing.T) {
	for _, tt := range []struct {
		name string
		sent map[string]string
		got  http.Header
		want []string
	}{
		{"same", map[string]string{"X-A": "1"}, http.Header{"X-A": {"1"}}, nil},
		{"added, removed, changed, sorted", map[string]string{"x-gone": "g", "X-Changed": "old"},
			http.Header{"X-New": {"n"}, "X-Changed": {"new"}, "A-First": {"1", "2"}},
			[]string{"+ a-first: 1, 2", "~ x-changed: old -> new", "- x-gone: g", "+ x-new: n"}},
		{"noise skipped", nil, http.Header{"Date": {"now"}, "Via": {"1.1 wedge"}, "Content-Length": {"3"}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := diffFields(tt.sent, tt.got, responseNoise)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := func(v string) *string { return &v }
	b := func(v bool) *bool { return &v }
	res := &wedgetest.Result{
		Status: 200, Header: http.Header{"X-Out": {"o"}}, Body: []byte("ok\n"),
		Upstream: &wedgetest.UpstreamRequest{Pool: "api", Header: http.Header{"X-In": {"i"}}},
		Logs:     []wedgetest.LogRecord{{Message: "routing /api to api"}},
	}
	for _, tt := range []struct {
		name string
		e    Expect
		want []string
	}{
		{"nothing expected", Expect{}, nil},
		{"all met", Expect{Status: 200, Upstream: s("api"), Local: b(false), RequestHeaders: map[string]*string{"x-in": s("i"), "x-no": nil},
			ResponseHeaders: map[string]*string{"X-Out": s("o")}, Body: s("ok\n"), Calls: []string{}, Logs: []string{"to api"}}, nil},
		{"status", Expect{Status: 404}, []string{"status 200, want 404"}},
		{"upstream", Expect{Upstream: s("none")}, []string{"upstream api, want none"}},
		{"local", Expect{Local: b(true)}, []string{"local response false, want true"}},
		{"fields", Expect{RequestHeaders: map[string]*string{"x-in": nil, "x-more": s("m")}, ResponseHeaders: map[string]*string{"x-out": s("p")}},
			[]string{`request field x-in: "i", want absent`, `request field x-more absent, want "m"`, `response field x-out: "o", want "p"`}},
		{"body", Expect{Body: s("no\n")}, []string{`body "ok\n", want "no\n"`}},
		{"calls", Expect{Calls: []string{"auth"}}, []string{"calls [], want [auth]"}},
		{"logs", Expect{Logs: []string{"missing"}}, []string{`no log message contains "missing"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := check(tt.e, res, "api", nil)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCommand runs the router fixture through the command: the passing
// cases print what the plugin did, the failing one its reasons, and the
// exit code is 1.
func TestCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Command([]string{"test", "testdata/router.yaml"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (one case fails); stderr %s\n%s", code, errOut.String(), out.String())
	}
	for _, want := range []string{
		"plugin router (router.wasm, ",
		"=== 1. api goes to the api pool\nrequest:  POST /api/users\nupstream: api (POST /api/users)\n  ~ body: \"hi\" -> \"hi!\"\nresponse: 200, from the upstream\n  + x-plugin: wat\n  body: \"api\\n\"\nlog:      info /api/users\nlog:      info log phase\nPASS\n",
		"=== 2. deny answers locally\nrequest:  GET /deny\nupstream: none\nresponse: 403, local response from the plugin\n",
		"  + x-denied: 1\n",
		"=== 3. the app pool answers differently this time\nrequest:  GET /\nupstream: app (GET /)\nresponse: 418, from the upstream\n",
		"FAIL\n  status 200, want 201\n  upstream app, want api\n  calls [], want [auth]\n  no log message contains \"nothing like this\"\n",
		"4 cases, 3 passed, 1 failed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out.String())
		}
	}
}

func TestCommand_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	os.WriteFile(bad, []byte("cases: [{request: {path: /}}]\nbogus: 1\n"), 0o600)
	noPlugin := dir + "/noplugin.yaml"
	os.WriteFile(noPlugin, []byte("cases: [{request: {path: /}}]\n"), 0o600)
	notWasm := dir + "/x.wasm"
	os.WriteFile(notWasm, []byte("not wasm"), 0o600)
	for _, tt := range []struct {
		name string
		args []string
		err  string
	}{
		{"no subcommand", nil, "usage: wedge plugin test"},
		{"unknown subcommand", []string{"run"}, "usage: wedge plugin test"},
		{"no file", []string{"test"}, "usage: wedge plugin test"},
		{"bad file", []string{"test", bad}, "line 2: field bogus not found"},
		{"no plugin", []string{"test", noPlugin}, "no plugin: name it"},
		{"plugin refused", []string{"test", "--plugin", notWasm, noPlugin}, `loading plugin "` + notWasm},
		{"flag after the file", []string{"test", noPlugin, "--plugin", dir + "/missing.wasm"}, "reading plugin"},
		{"missing config file", []string{"test", "--config", dir + "/none.json", noPlugin}, "reading plugin configuration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Command(tt.args, &out, &errOut); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(errOut.String(), tt.err) {
				t.Errorf("stderr %q, want %q", errOut.String(), tt.err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cases: [{request: {path: /}}]",
		"upstreams: {app: {status: 201, headers: {a: b}, body: x, down: true}}\ncases: [{upstreams: {app: {}}, expect: {status: 200, request_headers: {a: null}}}]",
		"pause_timeout: 1s\ncases: [{}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		if len(file.Cases) == 0 {
			t.Fatal("Parse accepted a file without cases")
		}
		for name := range file.Upstreams {
			if !validPool(name) {
				t.Fatalf("Parse accepted pool %q", name)
			}
		}
	})
}
