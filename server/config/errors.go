package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the configuration file's path as given to Load or Parse; ""
	// for a Config built in Go (QuickMode).
	File string
	// Line is the 1-based line in File, 0 when unknown.
	Line int
	// Path is the dotted path of the field, e.g.
	// "upstreams.app.servers[0].address"; "" for the file as a whole, or a
	// flag name such as "--listen" for QuickMode.
	Path string
	// Msg says what is wrong, lowercase, e.g. "durations need a unit, e.g.
	// 60s".
	Msg string
}

// String formats p as "file:line: path: msg", leaving out the parts that
// are empty: "wedge.yaml:12: limits.client_body_timeout: durations need a
// unit, e.g. 60s".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is every problem found in one configuration, in file order. Load,
// Parse, QuickMode and Validate return it; use errors.As to get at the list.
type Error struct {
	Problems []Problem
}

// Error returns the problems one per line, each formatted by
// Problem.String.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// source is what Parse learnt from the YAML beyond the values: where each
// key is and which keys were written (so an explicit 0 is kept).
type source struct {
	lines map[string]int  // dotted path -> 1-based line
	set   map[string]bool // dotted paths written with a non-null value
}

// problems collects Problems for one configuration.
type problems struct {
	file string
	src  *source
	list []Problem
}

// add records a problem at path, on the line of path or of its nearest
// ancestor found in the file.
func (ps *problems) add(path, format string, args ...any) {
	ps.addLine(ps.lineOf(path), path, fmt.Sprintf(format, args...))
}

func (ps *problems) addLine(line int, path, msg string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Path: path, Msg: msg})
}

func (ps *problems) lineOf(path string) int {
	if ps.src == nil {
		return 0
	}
	for path != "" {
		if l, ok := ps.src.lines[path]; ok {
			return l
		}
		path = parent(path)
	}
	return 0
}

// err returns nil or an *Error with the problems sorted by line.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
	return &Error{Problems: ps.list}
}

// parent strips the last element of a dotted path: "a.b[0].c" -> "a.b[0]"
// -> "a.b" -> "a" -> "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// join appends a field name to a dotted path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index appends a list index to a dotted path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
