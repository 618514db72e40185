package config

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDuration_UnmarshalYAML(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "60s", want: 60 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: `"2h"`, want: 2 * time.Hour},
		{in: "0", want: 0},
		{in: "60", wantErr: "line 2: durations need a unit, e.g. 60s"},
		{in: `"60"`, wantErr: "line 2: durations need a unit, e.g. 60s"},
		{in: "1.5", wantErr: "line 2: durations need a unit, e.g. 60s"},
		{in: "-5s", wantErr: `line 2: durations must not be negative, got "-5s"`},
		{in: "soon", wantErr: `line 2: want a duration such as 60s, 500ms or 1m30s, got "soon"`},
		{in: "[1s]", wantErr: "line 2: want a duration such as 60s, got a list"},
		{in: "{a: 1}", wantErr: "line 2: want a duration such as 60s, got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				X int      `yaml:"x"`
				D Duration `yaml:"d"`
			}
			err := yaml.Unmarshal([]byte("x: 1\nd: "+tt.in+"\n"), &v)
			checkTypeError(t, err, tt.wantErr)
			if tt.wantErr == "" && v.D.Std() != tt.want {
				t.Errorf("got %v, want %v", v.D, tt.want)
			}
		})
	}
}

func TestSize_UnmarshalYAML(t *testing.T) {
	const tooBig = `line 2: size "9999999999g" is too large`
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "16384", want: 16384},
		{in: "0x4000", want: 16384},
		{in: "16k", want: 16 << 10},
		{in: "16K", want: 16 << 10},
		{in: "16KiB", want: 16 << 10},
		{in: "16kib", want: 16 << 10},
		{in: `"16384"`, want: 16384},
		{in: "1m", want: 1 << 20},
		{in: "1MiB", want: 1 << 20},
		{in: "1g", want: 1 << 30},
		{in: "2GiB", want: 2 << 30},
		{in: "8589934591g", want: 8589934591 << 30},
		{in: "9999999999g", wantErr: tooBig},
		{in: "99999999999999999999", wantErr: `line 2: size "99999999999999999999" is too large`},
		{in: "-1", wantErr: `line 2: sizes must not be negative, got "-1"`},
		{in: "-1k", wantErr: `line 2: sizes must not be negative, got "-1k"`},
		{in: "16kb", wantErr: `line 2: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "16kb"`},
		{in: "1.5m", wantErr: `line 2: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "1.5m"`},
		{in: "k", wantErr: `line 2: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "k"`},
		{in: "16 k", wantErr: `line 2: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "16 k"`},
		{in: "true", wantErr: `line 2: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "true"`},
		{in: "[1]", wantErr: "line 2: want a size such as 16k, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				X int  `yaml:"x"`
				S Size `yaml:"s"`
			}
			err := yaml.Unmarshal([]byte("x: 1\ns: "+tt.in+"\n"), &v)
			checkTypeError(t, err, tt.wantErr)
			if tt.wantErr == "" && v.S != tt.want {
				t.Errorf("got %d, want %d", v.S, tt.want)
			}
		})
	}
}

func TestHeaderBuffers_UnmarshalYAML(t *testing.T) {
	const want = `want "NUMBER SIZE", e.g. "4 8k"`
	tests := []struct {
		in      string
		want    HeaderBuffers
		wantErr string
	}{
		{in: "4 8k", want: HeaderBuffers{4, 8 << 10}},
		{in: `"2  16KiB"`, want: HeaderBuffers{2, 16 << 10}},
		{in: "8 1024", want: HeaderBuffers{8, 1024}},
		{in: "4", wantErr: `line 2: ` + want + `, got "4"`},
		{in: "4 8k 2", wantErr: `line 2: ` + want + `, got "4 8k 2"`},
		{in: "x 8k", wantErr: `line 2: ` + want + `, got "x 8k": "x" is not a number of buffers`},
		{in: "-1 8k", wantErr: `line 2: ` + want + `, got "-1 8k": "-1" is not a number of buffers`},
		{in: "4 8x", wantErr: `line 2: ` + want + `, got "4 8x": want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "8x"`},
		{in: "{n: 4}", wantErr: `line 2: ` + want + `, got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				X int           `yaml:"x"`
				H HeaderBuffers `yaml:"h"`
			}
			err := yaml.Unmarshal([]byte("x: 1\nh: "+tt.in+"\n"), &v)
			checkTypeError(t, err, tt.wantErr)
			if tt.wantErr == "" && v.H != tt.want {
				t.Errorf("got %+v, want %+v", v.H, tt.want)
			}
		})
	}
}

// checkTypeError checks that err is nil, or a *yaml.TypeError with the one
// message want (yaml.v3 goes on decoding after it).
func checkTypeError(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	te, ok := err.(*yaml.TypeError)
	if !ok {
		t.Fatalf("got %T %v, want *yaml.TypeError %q", err, err, want)
	}
	if len(te.Errors) != 1 || te.Errors[0] != want {
		t.Fatalf("got %q\nwant %q", te.Errors, want)
	}
}

func TestSize_String(t *testing.T) {
	for _, tt := range []struct {
		s    Size
		want string
	}{
		{0, "0"}, {1000, "1000"}, {1024, "1k"}, {1536, "1536"}, {16 << 10, "16k"},
		{1 << 20, "1m"}, {3 << 30, "3g"}, {1<<20 + 1<<10, "1025k"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.s), got, tt.want)
		}
		if tt.s%kib == 0 { // the short forms parse back
			if back, err := parseSize(tt.want); err != nil || back != tt.s {
				t.Errorf("parseSize(%q) = %d, %v", tt.want, back, err)
			}
		}
	}
}

func TestHeaderBuffers_String(t *testing.T) {
	if got := (HeaderBuffers{4, 8 << 10}).String(); got != "4 8k" {
		t.Errorf("got %q", got)
	}
}

func TestDuration_String(t *testing.T) {
	if got := Duration(90 * time.Second).String(); got != "1m30s" {
		t.Errorf("got %q", got)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "x", "EMPTY": "", "ADDR": "[::1]:80"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, wantErr string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "a${A}b${A}c", want: "axbxc"},
		{in: "${ADDR}", want: "[::1]:80"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${UNSET:-}", want: ""},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${EMPTY}", want: ""},
		{in: "${A:-d}", want: "x"},
		{in: "${UNSET:-127.0.0.1:8080}", want: "127.0.0.1:8080"},
		{in: "$${A}", want: "${A}"},
		{in: "$A $ {A}", want: "$A $ {A}"},
		{in: "${UNSET}", wantErr: "environment variable UNSET is not set (write ${UNSET:-default} to give a default)"},
		{in: "${A", wantErr: `unterminated ${ in "${A"`},
		{in: "${}", wantErr: "bad environment reference ${}: want ${NAME} or ${NAME:-default}"},
		{in: "${1A}", wantErr: "bad environment reference ${1A}: want ${NAME} or ${NAME:-default}"},
		{in: "${A-b}", wantErr: "bad environment reference ${A-b}: want ${NAME} or ${NAME:-default}"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, lookup)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("expandEnv(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expandEnv(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"${A}", "$${A}", "${A:-b}", "${", "x${A}y${B:-}z", "$$$${A}"} {
		f.Add(s)
	}
	lookup := func(k string) (string, bool) { return "v", k == "A" }
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandEnv(s, lookup)
		if err == nil && !containsRef(s) && out != s {
			t.Fatalf("expandEnv(%q) = %q, changed a string without references", s, out)
		}
	})
}

func containsRef(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '$' && s[i+1] == '{' {
			return true
		}
	}
	return false
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"16k", "1MiB", "0", "-1", "9999999999999g", "1.5m", "GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseSize(s)
		if err == nil && v < 0 {
			t.Fatalf("parseSize(%q) = %d", s, v)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"60s", "0", "60", "-1s", "1h2m3.5s", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseDuration(s)
		if err == nil && v < 0 {
			t.Fatalf("parseDuration(%q) = %d", s, v)
		}
	})
}
