package main

import (
	"slices"
	"strings"
	"testing"
)

var offered = []string{"zstd", "br", "gzip"}

// TestNegotiate checks content-coding negotiation against RFC 9110
// §12.5.3 (and §12.4.2 for weights), case by case.
func TestNegotiate(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		absent  bool
		offered []string
		want    string
		ok      bool
	}{
		// §12.5.3 rule 1: no field, any coding acceptable; Wedge sends identity.
		{name: "no field", absent: true, want: "", ok: true},
		// "An Accept-Encoding header field with a field value that is empty
		// implies that the user agent does not want any content coding".
		{name: "empty value", value: "", want: "", ok: true},
		{name: "only commas and spaces", value: " , ,", want: "", ok: true},
		// rule 3: listed codings are acceptable; the server's order breaks ties.
		{name: "browser", value: "gzip, deflate, br, zstd", want: "zstd", ok: true},
		{name: "gzip only", value: "gzip", want: "gzip", ok: true},
		{name: "server order", value: "gzip, br", want: "br", ok: true},
		{name: "server order gzip first", value: "br, gzip", offered: []string{"gzip", "br"}, want: "gzip", ok: true},
		// rule 4 and §12.4.2: the highest non-zero qvalue wins.
		{name: "q decides", value: "br;q=0.5, gzip;q=0.9", want: "gzip", ok: true},
		{name: "q three digits", value: "br;q=0.801, gzip;q=0.8", want: "br", ok: true},
		{name: "Q upper case and OWS", value: "br ; Q=0.2 , gzip\t;\tq=0.3", want: "gzip", ok: true},
		{name: "q=1.000", value: "br;q=1.000, gzip;q=1", want: "br", ok: true},
		// §12.4.2: q=0 means not acceptable.
		{name: "gzip refused", value: "gzip;q=0", want: "", ok: true},
		{name: "q=0.000 refused", value: "br;q=0.000, gzip", want: "gzip", ok: true},
		{name: "all refused, identity fine", value: "gzip;q=0, br;q=0, zstd;q=0", want: "", ok: true},
		// rule 3 again: unlisted codings are not acceptable without "*".
		{name: "unknown coding only", value: "deflate", want: "", ok: true},
		{name: "compress and deflate", value: "compress, deflate;q=0.5", want: "", ok: true},
		// the wildcard matches any coding not listed.
		{name: "star", value: "*", want: "zstd", ok: true},
		{name: "star with refusals", value: "*, zstd;q=0", want: "br", ok: true},
		{name: "star low, gzip listed", value: "gzip;q=0.5, *;q=0.8", want: "zstd", ok: true},
		{name: "star zero, gzip listed", value: "gzip, *;q=0", want: "gzip", ok: true},
		// rule 2: identity is acceptable unless refused by identity;q=0
		// or *;q=0 without an identity entry.
		{name: "identity;q=0 and gzip", value: "identity;q=0, gzip", want: "gzip", ok: true},
		{name: "identity;q=0 alone", value: "identity;q=0", want: "", ok: false},
		{name: "identity;q=0 and deflate", value: "deflate, identity;q=0", want: "", ok: false},
		{name: "star;q=0 alone", value: "*;q=0", want: "", ok: false},
		{name: "star;q=0 with identity", value: "*;q=0, identity", want: "", ok: true},
		{name: "star;q=0 with identity;q=0.5 and gzip", value: "*;q=0, identity;q=0.5, gzip", want: "gzip", ok: true},
		// identity preferred explicitly over the codings.
		{name: "identity preferred", value: "identity, gzip;q=0.5", want: "", ok: true},
		{name: "identity tie goes to coding", value: "identity, gzip", want: "gzip", ok: true},
		{name: "identity via star preferred", value: "*;q=0.9, gzip;q=0.5", offered: []string{"gzip"}, want: "", ok: true},
		// names are case-insensitive; x-gzip is gzip (§8.4.1.3).
		{name: "upper case", value: "GZIP", want: "gzip", ok: true},
		{name: "x-gzip", value: "x-gzip", want: "gzip", ok: true},
		// the first entry for a coding counts.
		{name: "repeated coding", value: "gzip;q=0, gzip", want: "", ok: true},
		// malformed elements are skipped, the rest still counts.
		{name: "bad q skipped", value: "br;q=2, gzip", want: "gzip", ok: true},
		{name: "q over 1", value: "br;q=1.001", want: "", ok: true},
		{name: "q with four decimals", value: "br;q=0.0001, gzip;q=0.1", want: "gzip", ok: true},
		{name: "q empty", value: "br;q=, gzip;q=0.1", want: "gzip", ok: true},
		{name: "q not a number", value: "br;q=high", want: "", ok: true},
		{name: "bad name", value: "g(zip), br", want: "br", ok: true},
		{name: "unknown parameter ignored", value: "br;level=9;q=0.5, gzip;q=0.4", want: "br", ok: true},
		{name: "empty parameter", value: "br;, gzip;q=0.1", want: "br", ok: true},
		{name: "empty elements", value: ",,gzip,,", want: "gzip", ok: true},
		{name: "nothing offered", value: "gzip", offered: []string{}, want: "", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off := tt.offered
			if off == nil {
				off = offered
			}
			got, ok := negotiate(tt.value, !tt.absent, off)
			if got != tt.want || ok != tt.ok {
				t.Errorf("negotiate(%q) = %q, %v; want %q, %v", tt.value, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestParseQValue checks the qvalue grammar (RFC 9110 §12.4.2).
func TestParseQValue(t *testing.T) {
	good := map[string]int{"0": 0, "0.": 0, "0.5": 500, "0.05": 50, "0.005": 5, "0.999": 999,
		"1": 1000, "1.": 1000, "1.0": 1000, "1.000": 1000}
	for s, want := range good {
		if got, ok := parseQValue(s); !ok || got != want {
			t.Errorf("parseQValue(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", ".5", "2", "1.5", "1.0001", "0.5555", "0,5", "-0", "+1", "0x1", "1e0", " 1", "0.5 "} {
		if got, ok := parseQValue(s); ok {
			t.Errorf("parseQValue(%q) = %d, accepted", s, got)
		}
	}
}

// FuzzAcceptEncoding checks that any field value parses without a panic
// into lower-case tokens with weights in 0-1000, and that negotiation
// only ever picks an offered coding with a non-zero weight.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip, deflate, br, zstd", "br;q=0.5, gzip;q=1.0, *;q=0",
		"identity;q=0", "*;q=0, identity", "x-gzip;Q=0.001", ";;,,;q=1", "g\x00zip;q=0.5", "br;q=1.0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, e := range parseAcceptEncoding(v) {
			if e.q < 0 || e.q > 1000 {
				t.Fatalf("%q: weight %d", v, e.q)
			}
			if !isToken(e.coding) || e.coding != strings.ToLower(e.coding) {
				t.Fatalf("%q: coding %q", v, e.coding)
			}
		}
		got, ok := negotiate(v, true, offered)
		if got != "" && (!ok || !slices.Contains(offered, got)) {
			t.Fatalf("negotiate(%q) = %q, %v", v, got, ok)
		}
		// The server's order breaks ties only: whether a coding is chosen
		// does not depend on it.
		rev, _ := negotiate(v, true, []string{"gzip", "br", "zstd"})
		if (rev == "") != (got == "") {
			t.Fatalf("negotiate(%q) = %q, but %q with the order reversed", v, got, rev)
		}
		// A refusal listed first overrides whatever follows.
		if got != "" {
			if again, _ := negotiate(got+";q=0, "+v, true, offered); again == got {
				t.Fatalf("negotiate(%q) still picks %q after refusing it", got+";q=0, "+v, got)
			}
		}
	})
}
