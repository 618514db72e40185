package main

import (
	"strings"
	"testing"
)

// TestParseConfig checks defaults and that each bad field is refused with
// its name.
func TestParseConfig(t *testing.T) {
	p, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.encodings, ",") != "zstd,br,gzip" || p.minLength != 512 ||
		p.levels["gzip"] != 6 || p.levels["br"] != 5 || p.levels["zstd"] != 3 {
		t.Errorf("defaults: %+v", p)
	}
	p, err = ParseConfig([]byte(`{"encodings":["gzip"],"levels":{"gzip":1},"types":["text/html"],"min_length":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.encodings, ",") != "gzip" || p.levels["gzip"] != 1 || p.minLength != 0 || len(p.types) != 1 {
		t.Errorf("parsed: %+v", p)
	}
	bad := map[string]string{
		`{"encodings":[]}`:                 "encodings: empty",
		`{"encodings":["gzip","deflate"]}`: "encodings[1]: unknown coding",
		`{"encodings":["gzip","gzip"]}`:    "encodings[1]: \"gzip\" listed twice",
		`{"levels":{"gzip":0}}`:            "levels.gzip: 0 is outside 1-9",
		`{"levels":{"br":12}}`:             "levels.br: 12 is outside 0-11",
		`{"levels":{"zstd":23}}`:           "levels.zstd: 23 is outside 1-22",
		`{"levels":{"lz4":1}}`:             "levels.lz4: unknown coding",
		`{"types":[]}`:                     "types: empty",
		`{"types":["text/html","html"]}`:   "types[1]: \"html\" is not a media type",
		`{"types":["text/ht*ml"]}`:         "types[0]: \"text/ht*ml\": subtype must be",
		`{"types":["te*t/html"]}`:          "types[0]: \"te*t/html\": type must be",
		`{"min_length":-1}`:                "min_length: -1 is negative",
		`{"min_lenght":10}`:                "unknown field \"min_lenght\"",
		`{"encodings":"gzip"}`:             "parsing configuration",
		`[`:                                "parsing configuration",
	}
	for cfg, want := range bad {
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(%s) error %v, want one containing %q", cfg, err, want)
		}
	}
}

// TestPolicy_Compressible checks type matching with the default list.
func TestPolicy_Compressible(t *testing.T) {
	p, _ := ParseConfig(nil)
	yes := []string{"text/html", "text/html; charset=utf-8", "TEXT/HTML", " text/plain ;q", "text/css",
		"application/json", "application/problem+json", "application/ld+json", "application/vnd.api+json",
		"application/javascript", "application/xml", "application/atom+xml", "image/svg+xml",
		"application/wasm", "font/ttf", "image/x-icon"}
	no := []string{"", "text", "text/", "/html", "image/png", "image/jpeg", "application/octet-stream",
		"application/zip", "font/woff2", "video/mp4", "application/json-seq+", "text/event-stream",
		"text/event-stream; charset=utf-8", "application/+json"}
	for _, ct := range yes {
		if !p.compressible(ct) {
			t.Errorf("compressible(%q) = false", ct)
		}
	}
	for _, ct := range no {
		if p.compressible(ct) {
			t.Errorf("compressible(%q) = true", ct)
		}
	}
	star, _ := ParseConfig([]byte(`{"types":["*/*"]}`))
	if !star.compressible("image/png") || star.compressible("text/event-stream") {
		t.Error("*/* must match everything but text/event-stream")
	}
}

// TestMergeVary checks that Accept-Encoding is added once.
func TestMergeVary(t *testing.T) {
	tests := []struct {
		in, want string
		changed  bool
	}{
		{"", "Accept-Encoding", true},
		{" , ", "Accept-Encoding", true},
		{"Origin", "Origin, Accept-Encoding", true},
		{"Origin, Cookie", "Origin, Cookie, Accept-Encoding", true},
		{"accept-encoding", "accept-encoding", false},
		{"Origin,Accept-Encoding ", "Origin,Accept-Encoding ", false},
		{"*", "*", false}, // RFC 9110 §12.5.5: a proxy never generates "*", nor adds to it
	}
	for _, tt := range tests {
		if got, changed := mergeVary(tt.in); got != tt.want || changed != tt.changed {
			t.Errorf("mergeVary(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
		}
	}
}

// TestWeakETag checks the ETag of a compressed response (RFC 9110 §8.8.3).
func TestWeakETag(t *testing.T) {
	tests := []struct {
		in, want string
		keep     bool
	}{
		{`"abc"`, `W/"abc"`, true},
		{`""`, `W/""`, true},
		{`W/"abc"`, `W/"abc"`, true},
		{`abc`, ``, false},
		{`"abc`, ``, false},
		{`W/abc`, ``, false},
		{`w/"abc"`, ``, false}, // W/ is case-sensitive (§8.8.3)
	}
	for _, tt := range tests {
		if got, keep := weakETag(tt.in); got != tt.want || keep != tt.keep {
			t.Errorf("weakETag(%q) = %q, %v; want %q, %v", tt.in, got, keep, tt.want, tt.keep)
		}
	}
}
