package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// nodeBudget bounds the nodes visited while decoding, aliases expanded, so
// a "billion laughs" document is refused instead of eating the machine.
const nodeBudget = 1 << 16

// Load reads the YAML file at path and returns its configuration, defaults
// applied and validated (see Parse). A file that cannot be read gives an
// error wrapping the os error ("reading config: open ...: no such file or
// directory"); a bad file gives an *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes the YAML document data, read from file, into a
// configuration; expands ${NAME} and ${NAME:-default} references (see the
// package doc); makes relative paths relative to file's directory; applies
// the defaults and validates. file is used in error messages and for
// relative paths; it need not exist.
//
// Unknown keys, duplicate keys, values of the wrong type, unset variables
// and everything Validate refuses are reported together as one *Error whose
// problems read "wedge.yaml:12: limits.client_body_timeout: durations need
// a unit, e.g. 60s". Syntax errors stop decoding and are reported alone.
// An empty document is the all-defaults configuration.
func Parse(file string, data []byte) (*Config, error) {
	c, d, ok := decode(file, data)
	if !ok {
		return nil, d.err()
	}
	if file != "" {
		c.resolvePaths(filepath.Dir(file))
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		// Leave out what Validate says of fields that failed to decode:
		// "must be greater than 0" after "durations need a unit" is noise.
		failed := d.list
		for _, p := range err.(*Error).Problems {
			if !failedUnder(failed, p.Path) {
				d.list = append(d.list, p)
			}
		}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Default returns the embedded default configuration (default.yaml: listen
// on 127.0.0.1:8080, proxy to the pool "app" of 127.0.0.1:8000), defaults
// applied. It is not validated, since that looks at the file system
// (temp_path); call Validate before use.
func Default() *Config {
	c, d, ok := decode("default.yaml", defaultYAML)
	if err := d.err(); !ok || err != nil {
		panic(fmt.Sprintf("config: embedded default.yaml: %v", err))
	}
	c.File = ""
	c.ApplyDefaults()
	return c
}

// decode parses data and decodes it into a Config without defaults or
// validation. It returns false, with nothing decoded, after a syntax error.
func decode(file string, data []byte) (*Config, *decoder, bool) {
	d := &decoder{
		problems: problems{file: file, src: &source{lines: map[string]int{}, set: map[string]bool{}}},
		budget:   nodeBudget,
		active:   map[*yaml.Node]bool{},
		lookup:   os.LookupEnv,
	}
	c := &Config{File: file, src: d.src}
	root, ok := d.parse(data)
	if !ok {
		return nil, d, false
	}
	if root != nil {
		d.value(root, reflect.ValueOf(c).Elem(), "")
	}
	return c, d, true
}

// failedUnder reports whether path, or a field holding it, is among the
// failed.
func failedUnder(failed []Problem, path string) bool {
	for _, p := range failed {
		f := p.Path
		if f == "" || f == path || strings.HasPrefix(path, f+".") || strings.HasPrefix(path, f+"[") {
			return true
		}
	}
	return false
}

// yamlLine matches yaml.v3's syntax errors, "yaml: line 3: did not find
// expected key".
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// parse reads exactly one YAML document into a node tree. It returns a nil
// root for an empty document; false after a syntax error.
func (d *decoder) parse(data []byte) (root *yaml.Node, ok bool) {
	defer func() {
		// yaml.v3 is not known to panic on any input, but a config file
		// must never crash the server that reads it.
		if r := recover(); r != nil {
			d.addLine(0, "", fmt.Sprintf("parsing YAML: internal error: %v", r))
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntax(err)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err)
		return nil, false
	default:
		d.addLine(next.Line, "", "want one YAML document, found a second")
		return nil, false
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], true
	}
	return nil, true
}

func (d *decoder) syntax(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.addLine(line, "", m[2])
		return
	}
	d.addLine(0, "", strings.TrimPrefix(msg, "yaml: "))
}

// decoder walks a yaml.Node tree into the Config by reflection, following
// the yaml struct tags, so that each problem carries its dotted path and
// line and all of them are reported. Scalars are converted by yaml.v3
// itself (or by the nodeDecoder types).
type decoder struct {
	problems
	budget int
	active map[*yaml.Node]bool // anchors being walked, to refuse cycles
	lookup func(string) (string, bool)
}

// value decodes n into v, the field at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		if t == nil || d.active[t] {
			d.addLine(n.Line, path, fmt.Sprintf("alias *%s refers to itself", n.Value))
			return
		}
		d.active[t] = true
		d.value(t, v, path)
		delete(d.active, t)
		return
	}
	if n.Kind == yaml.ScalarNode {
		var ok bool
		if n, ok = d.expand(n, path); !ok {
			return
		}
		if n.ShortTag() == tagNull {
			return // null is absent: the default applies
		}
	}
	d.src.set[path] = true
	if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
		if _, free := nd.(*JSONValue); free && n.Kind != yaml.ScalarNode {
			// a plugin's config: any YAML, whose scalars may refer to
			// the environment too
			var ok bool
			if n, ok = d.expandTree(n, path); !ok {
				return
			}
		}
		if err := nd.decodeNode(n); err != nil {
			d.addLine(n.Line, path, err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.dict(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.addLine(n.Line, path, "want a string, got "+describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt || n.Decode(&i) != nil {
			d.addLine(n.Line, path, "want an integer, got "+describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.addLine(n.Line, path, fmt.Sprintf("integer %s is out of range", n.Value))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool || n.Decode(&b) != nil {
			d.addLine(n.Line, path, "want true or false, got "+describe(n))
			return
		}
		v.SetBool(b)
	default:
		panic("config: no decoder for field kind " + v.Kind().String()) // a schema change without a decoder
	}
}

// spend counts one more node visited, and reports false (once with a
// problem) when the budget is spent.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.budget--; d.budget >= 0 {
		return true
	}
	if d.budget == -1 {
		d.addLine(n.Line, path, fmt.Sprintf("document too large: more than %d nodes with aliases expanded", nodeBudget))
	}
	return false
}

// structure decodes a mapping into a struct, refusing unknown and duplicate
// keys.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.addLine(n.Line, path, "want a mapping at the top level, got "+describe(n))
		} else {
			d.addLine(n.Line, path, "want a mapping, got "+describe(n))
		}
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	d.entries(n, path, func(k, val *yaml.Node, merged bool) {
		name := k.Value
		p := join(path, name)
		if k.Kind != yaml.ScalarNode {
			d.addLine(k.Line, path, "want a field name, got "+describe(k))
			return
		}
		i, ok := fields[name]
		if why, removed := removedFields[p]; !ok && removed {
			d.addLine(k.Line, p, "no longer a field: "+why)
			return
		}
		if !ok {
			msg := "unknown field"
			if s := closest(name, fields); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.addLine(k.Line, p, msg)
			return
		}
		if !merged {
			if first, dup := seen[name]; dup {
				d.addLine(k.Line, p, fmt.Sprintf("duplicate key (first at line %d)", first))
				return
			}
			seen[name] = k.Line
		}
		d.src.lines[p] = k.Line
		d.value(val, v.Field(i), p)
	})
}

// dict decodes a mapping into a map with string keys (the upstream pools);
// keys may refer to the environment.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addLine(n.Line, path, "want a mapping, got "+describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]int{}
	d.entries(n, path, func(k, val *yaml.Node, merged bool) {
		if k.Kind != yaml.ScalarNode {
			d.addLine(k.Line, path, "want a name, got "+describe(k))
			return
		}
		k, ok := d.expand(k, path)
		if !ok {
			return
		}
		name := k.Value
		p := join(path, name)
		if !merged {
			if first, dup := seen[name]; dup {
				d.addLine(k.Line, p, fmt.Sprintf("duplicate key (first at line %d)", first))
				return
			}
			seen[name] = k.Line
		}
		d.src.lines[p] = k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, p)
		v.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), elem)
	})
}

// sequence decodes a sequence into a slice.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.addLine(n.Line, path, "want a list, got "+describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := index(path, i)
		d.src.lines[p] = item.Line
		d.value(item, s.Index(i), p)
	}
	v.Set(s)
}

// entries calls f for each key and value of mapping n, first those merged
// in with "<<: *anchor" (YAML merge keys), then n's own, so that n's own
// win.
func (d *decoder) entries(n *yaml.Node, path string, f func(k, v *yaml.Node, merged bool)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == tagMerge {
			d.merge(n.Content[i+1], path, f)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !(k.Kind == yaml.ScalarNode && k.ShortTag() == tagMerge) {
			f(k, n.Content[i+1], false)
		}
	}
}

// merge calls f for the entries of a merge key's value: a mapping, or a
// list of mappings of which the earlier win.
func (d *decoder) merge(m *yaml.Node, path string, f func(k, v *yaml.Node, merged bool)) {
	if !d.spend(m, path) {
		return
	}
	if m.Kind == yaml.AliasNode {
		t := m.Alias
		if t == nil || d.active[t] {
			d.addLine(m.Line, path, fmt.Sprintf("alias *%s refers to itself", m.Value))
			return
		}
		d.active[t] = true
		defer delete(d.active, t)
		m = t
	}
	switch m.Kind {
	case yaml.MappingNode:
		d.entries(m, path, func(k, v *yaml.Node, _ bool) { f(k, v, true) })
	case yaml.SequenceNode:
		for i := len(m.Content) - 1; i >= 0; i-- {
			if item := m.Content[i]; item.Kind == yaml.MappingNode || item.Kind == yaml.AliasNode {
				d.merge(item, path, f)
			} else {
				d.addLine(item.Line, path, "want a mapping to merge, got "+describe(item))
			}
		}
	default:
		d.addLine(m.Line, path, "want a mapping to merge, got "+describe(m))
	}
}

// expand returns n with environment references in its value expanded, a
// copy if anything changed. A plain scalar is typed again after expansion.
func (d *decoder) expand(n *yaml.Node, path string) (*yaml.Node, bool) {
	if !strings.Contains(n.Value, "${") {
		return n, true
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.addLine(n.Line, path, err.Error())
		return n, false
	}
	cp := *n
	cp.Value = s
	if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		cp.Tag = "" // resolved again from the value by ShortTag
	}
	return &cp, true
}

// expandTree returns n with the environment references of every scalar
// value below it expanded (expand), a copy where anything changed; mapping
// keys are left as written. Aliases are followed.
func (d *decoder) expandTree(n *yaml.Node, path string) (*yaml.Node, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		return d.expand(n, path)
	case yaml.AliasNode:
		if n.Alias == nil || d.active[n.Alias] {
			return n, true // a loop: decodeNode reports it
		}
		d.active[n.Alias] = true
		defer delete(d.active, n.Alias)
		return d.expandTree(n.Alias, path)
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
	default:
		return n, true
	}
	var content []*yaml.Node
	ok := true
	for i, c := range n.Content {
		p := path
		switch {
		case n.Kind == yaml.SequenceNode:
			p = index(path, i)
		case n.Kind == yaml.MappingNode && i%2 == 1:
			p = path + "." + n.Content[i-1].Value
		case n.Kind == yaml.MappingNode:
			continue // a key
		}
		e, eok := d.expandTree(c, p)
		ok = ok && eok
		if e != c && content == nil {
			content = slices.Clone(n.Content)
		}
		if content != nil {
			content[i] = e
		}
	}
	if content == nil {
		return n, ok
	}
	cp := *n
	cp.Content = content
	return &cp, ok
}

// expandEnv replaces ${NAME} and ${NAME:-default} in s with the values of
// environment variables; $${ is a literal ${.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${ -> ${
			b.WriteString(s[:i])
			b.WriteString("{")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s[i:])
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !isEnvName(name) {
			return "", fmt.Errorf("bad environment reference ${%s}: want ${NAME} or ${NAME:-default}", ref)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
		}
		b.WriteString(v)
	}
}

// isEnvName reports whether s is a shell variable name,
// [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		m[name] = i
	}
	return m
}

// closest returns the known name nearest to name, if it is a likely typo
// (at most 2 edits, or 3 for long names), else "".
func closest(name string, known map[string]int) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	if len(name) >= 12 {
		bestDist = 4
	}
	for _, k := range names {
		if dist := editDistance(name, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolvePaths makes the relative paths of a file relative to dir.
func (c *Config) resolvePaths(dir string) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Limits.TempPath = rel(c.Limits.TempPath)
	for i := range c.Plugins {
		c.Plugins[i].Path = rel(c.Plugins[i].Path)
	}
	if c.PluginCache != "off" {
		c.PluginCache = rel(c.PluginCache)
	}
	c.Cache.Path = rel(c.Cache.Path)
	c.TLS.CARoot = rel(c.TLS.CARoot)
	c.TLS.DataDir = rel(c.TLS.DataDir)
	for i := range c.TLS.Certificates {
		c.TLS.Certificates[i].Cert = rel(c.TLS.Certificates[i].Cert)
		c.TLS.Certificates[i].Key = rel(c.TLS.Certificates[i].Key)
	}
	switch c.Log.Access {
	case "", "stdout", "stderr", "off":
	default:
		c.Log.Access = rel(c.Log.Access)
	}
}
