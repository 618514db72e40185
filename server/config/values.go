package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Size units, powers of 1024 as in nginx.
const (
	kib Size = 1 << 10
	mib Size = 1 << 20
	gib Size = 1 << 30
)

// YAML short tags, as yaml.v3 resolves them.
const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagMerge = "!!merge"
)

// errNeedUnit is the message for a bare number where a duration belongs.
var errNeedUnit = errors.New("durations need a unit, e.g. 60s")

// nodeDecoder is implemented by the schema's own scalar types. The loader
// calls decodeNode directly, so it can attach the field's path to the error;
// UnmarshalYAML wraps the same function for other users of yaml.v3.
type nodeDecoder interface {
	decodeNode(n *yaml.Node) error
}

// lineError turns err into a *yaml.TypeError carrying n's line, the form
// yaml.v3 collects (decoding goes on and every error is reported).
func lineError(n *yaml.Node, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
}

// scalar follows aliases and returns n if it is a scalar node, else nil.
func scalar(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		return nil
	}
	return n
}

// String returns d in Go syntax, e.g. "1m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML decodes a duration such as "60s" (see Duration). Errors are
// *yaml.TypeError values carrying n's line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.decodeNode(n); err != nil {
		return lineError(n, err)
	}
	return nil
}

func (d *Duration) decodeNode(n *yaml.Node) error {
	s := scalar(n)
	if s == nil {
		return fmt.Errorf("want a duration such as 60s, got %s", describe(n))
	}
	if t := s.ShortTag(); (t == tagInt || t == tagFloat) && s.Value != "0" {
		return errNeedUnit
	}
	v, err := parseDuration(s.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// parseDuration parses a Go duration string, refusing bare numbers other
// than "0" and negative durations.
func parseDuration(s string) (Duration, error) {
	if s != "0" && isNumber(s) {
		return 0, errNeedUnit
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 60s, 500ms or 1m30s, got %q", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("durations must not be negative, got %q", s)
	}
	return Duration(v), nil
}

// isNumber reports whether s is a decimal number with an optional sign and
// fraction, such as "60", "-1" or "1.5".
func isNumber(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// String returns s as nginx writes it: "16k", "1m", "1g", or bytes.
func (s Size) String() string {
	switch {
	case s != 0 && s%gib == 0:
		return strconv.FormatInt(int64(s/gib), 10) + "g"
	case s != 0 && s%mib == 0:
		return strconv.FormatInt(int64(s/mib), 10) + "m"
	case s != 0 && s%kib == 0:
		return strconv.FormatInt(int64(s/kib), 10) + "k"
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalYAML decodes a size such as 16384 or "16k" (see Size). Errors are
// *yaml.TypeError values carrying n's line.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if err := s.decodeNode(n); err != nil {
		return lineError(n, err)
	}
	return nil
}

func (s *Size) decodeNode(n *yaml.Node) error {
	sc := scalar(n)
	if sc == nil {
		return fmt.Errorf("want a size such as 16k, got %s", describe(n))
	}
	if sc.ShortTag() == tagInt {
		// yaml.v3 reads 0x10, 0o20 and 1_000 as integers too.
		var v int64
		if err := sc.Decode(&v); err != nil {
			return fmt.Errorf("size %q is too large", sc.Value)
		}
		if v < 0 {
			return fmt.Errorf("sizes must not be negative, got %q", sc.Value)
		}
		*s = Size(v)
		return nil
	}
	v, err := parseSize(sc.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// parseSize parses bytes written as digits with an optional
// case-insensitive suffix k, m, g, KiB, MiB or GiB.
func parseSize(s string) (Size, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("sizes must not be negative, got %q", s)
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	var unit Size
	switch strings.ToLower(s[i:]) {
	case "":
		unit = 1
	case "k", "kib":
		unit = kib
	case "m", "mib":
		unit = mib
	case "g", "gib":
		unit = gib
	}
	if i == 0 || unit == 0 {
		return 0, fmt.Errorf("want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got %q", s)
	}
	v, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || v > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(v) * unit, nil
}

// String returns h as nginx writes it, e.g. "4 8k".
func (h HeaderBuffers) String() string {
	return strconv.Itoa(h.Number) + " " + h.Size.String()
}

// UnmarshalYAML decodes "NUMBER SIZE", e.g. "4 8k" (nginx
// large_client_header_buffers). Errors are *yaml.TypeError values carrying
// n's line.
func (h *HeaderBuffers) UnmarshalYAML(n *yaml.Node) error {
	if err := h.decodeNode(n); err != nil {
		return lineError(n, err)
	}
	return nil
}

func (h *HeaderBuffers) decodeNode(n *yaml.Node) error {
	const want = `want "NUMBER SIZE", e.g. "4 8k"`
	sc := scalar(n)
	if sc == nil {
		return fmt.Errorf("%s, got %s", want, describe(n))
	}
	f := strings.Fields(sc.Value)
	if len(f) != 2 {
		return fmt.Errorf("%s, got %q", want, sc.Value)
	}
	num, err := strconv.Atoi(f[0])
	if err != nil || num < 0 {
		return fmt.Errorf("%s, got %q: %q is not a number of buffers", want, sc.Value, f[0])
	}
	size, err := parseSize(f[1])
	if err != nil {
		return fmt.Errorf("%s, got %q: %w", want, sc.Value, err)
	}
	*h = HeaderBuffers{Number: num, Size: size}
	return nil
}

// describe names what n is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		if n.Alias != nil && n.Alias.Kind != yaml.AliasNode {
			return describe(n.Alias)
		}
	case yaml.ScalarNode:
		if n.ShortTag() == tagNull {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// decodeNode turns any YAML value (mapping, sequence, scalar) into JSON.
// Mapping keys must be strings, as JSON requires.
func (j *JSONValue) decodeNode(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("want a YAML value: %w", err)
	}
	v, err := jsonable(v)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("converting to JSON: %w", err)
	}
	*j = b
	return nil
}

// jsonable turns yaml.v3's map[string]any / map[any]any trees into what
// encoding/json takes.
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			ev, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[k] = ev
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v is not a string, as JSON needs", k)
			}
			ev, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[ks] = ev
		}
		return m, nil
	case []any:
		for i, e := range t {
			ev, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[i] = ev
		}
		return t, nil
	}
	return v, nil
}
