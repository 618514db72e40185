package wedgetest

import (
	"net/http"
	"testing"
)

func TestParseSample(t *testing.T) {
	tests := []struct {
		line string
		want sample
		ok   bool
	}{
		{`# HELP x y`, sample{}, false},
		{`up 1`, sample{name: "up", labels: map[string]string{}, value: 1}, true},
		{`wedge_plugin_vms{plugin="router"} 2`, sample{name: "wedge_plugin_vms", labels: map[string]string{"plugin": "router"}, value: 2}, true},
		{`m{a="x\"y",b="1\\2\n"} 3.5 1700000000`, sample{name: "m", labels: map[string]string{"a": `x"y`, "b": "1\\2\n"}, value: 3.5}, true},
		{`m{a="x} 1`, sample{}, false},
		{`m{a=x} 1`, sample{}, false},
		{`m{a="x"}`, sample{}, false},
		{`m NaN`, sample{name: "m", labels: map[string]string{}}, true},
	}
	for _, tt := range tests {
		got, ok := parseSample(tt.line)
		if ok != tt.ok {
			t.Errorf("parseSample(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if got.name != tt.want.name || len(got.labels) != len(tt.want.labels) || (got.value != tt.want.value && got.value == got.value) {
			t.Errorf("parseSample(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
		for k, v := range tt.want.labels {
			if got.labels[k] != v {
				t.Errorf("parseSample(%q) label %s = %q, want %q", tt.line, k, got.labels[k], v)
			}
		}
	}
}

func FuzzParseSample(f *testing.F) {
	f.Add(`wedge_plugin_vms{plugin="router"} 2`)
	f.Add(`m{a="x\"y",b="1\\2\n"} 3.5 1700000000`)
	f.Add(`m{a="`)
	f.Fuzz(func(t *testing.T, line string) {
		parseSample(line) // must not panic
	})
}

func TestIsProxied(t *testing.T) {
	tests := []struct {
		via  []string
		want bool
	}{
		{nil, false},
		{[]string{"1.1 wedge"}, true},
		{[]string{"1.0 fred, 1.1 wedge"}, true},
		{[]string{"1.1 wedge", "1.1 other"}, false},
		{[]string{"1.1 wedge (Wedge)"}, true},
		{[]string{"1.1 wedges"}, false},
	}
	for _, tt := range tests {
		if got := isProxied(http.Header{"Via": tt.via}, "wedge"); got != tt.want {
			t.Errorf("isProxied(Via: %q) = %v, want %v", tt.via, got, tt.want)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		req  Request
		want string
	}{
		{Request{Method: "GET", Path: "/", Host: "h"}, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{Request{Method: "POST", Path: "/p", Host: "h", Header: http.Header{"B": {"2"}, "A": {"1", "3"}, "Host": {"x"}}},
			"POST /p HTTP/1.1\r\nHost: h\r\nA: 1\r\nA: 3\r\nB: 2\r\nContent-Length: 0\r\n\r\n"},
		{Request{Method: "PUT", Path: "/p", Host: "h", Body: []byte("abc"), Header: http.Header{"Transfer-Encoding": {"chunked"}}},
			"PUT /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := string(appendRequest(nil, &tt.req)); got != tt.want {
			t.Errorf("appendRequest(%+v) = %q, want %q", tt.req, got, tt.want)
		}
	}
}
