// Package meter instruments a WebAssembly module so that the host gets
// control back from a running guest regularly: often enough to stop a
// guest that runs past its deadline, and to let the Go scheduler stop the
// goroutine running it (machine code that wazero generated cannot be
// preempted, so a guest that never calls out would block garbage
// collection, and with it the whole process).
//
// wazero's own answer, RuntimeConfig.WithCloseOnContextDone, calls into Go
// at every loop iteration and starts a goroutine for every call into the
// guest; for a proxy-wasm filter that is most of the cost of a callback.
// Instrument instead adds a counter, decremented in wasm, and a host call
// made only when it runs out:
//
//   - an import ImportModule.ImportName of type [] -> [], added after the
//     module's own imports (so every function index of the module's own
//     functions grows by one, and every reference to one is renumbered:
//     call, return_call, ref.func, exports, the start function, element
//     segments, global initializers and the "name" section);
//   - a mutable i32 global, the fuel, starting at Budget, added after the
//     module's own globals;
//   - at the start of every function body and of every loop body, a check
//     that subtracts the size in bytes of that body (at least 1, at most
//     Budget) from the fuel and, when the fuel is no longer positive, calls
//     the import and refills the fuel. A function body that reaches a loop
//     before any branch or call (as every function the Go compiler emits
//     does) is checked at that loop only, charged for the bytes before it
//     too.
//
// Any run of the guest that lasts long enough passes through a check: it
// either loops (a loop header) or calls (a function entry), since code
// without either is bounded by its size. Between two calls of the import
// the guest executes about Budget bytes' worth of code at most (bodies
// larger than Budget are charged Budget). The host's function may panic to
// stop the guest, which wazero turns into an error of the call into it.
//
// DWARF custom sections (".debug_*") are dropped: they describe code
// offsets that the inserted checks move. Everything else is kept.
//
// The instruction set decoded is WebAssembly 2.0 (what wazero's
// CoreFeaturesV2 enables) plus tail calls, exception handling (try_table),
// threads and the typed function reference calls; anything else is refused
// with ErrUnsupported. A module that is not well formed is refused with
// ErrMalformed; one that is well formed but invalid may be instrumented,
// and the runtime then refuses it.
package meter

import (
	"errors"
	"fmt"
	"strings"
)

// Names of the host function an instrumented module imports. Its type is
// [] -> [] (no parameters, no results).
const (
	ImportModule = "wedge:meter"
	ImportName   = "yield"
)

// Budget is the fuel between two calls of the import, in bytes of
// WebAssembly code: at a few hundred picoseconds to a few nanoseconds per
// byte, well under a millisecond of guest time.
const Budget = 1 << 18

// Errors returned by Instrument, wrapped with the offset and what is wrong.
var (
	// ErrMalformed is returned for bytes that are not a well-formed
	// WebAssembly 1.0 binary module.
	ErrMalformed = errors.New("malformed WebAssembly module")
	// ErrUnsupported is returned for an instruction or type Instrument
	// does not decode (a proposal the host does not run).
	ErrUnsupported = errors.New("unsupported WebAssembly feature")
)

// Section ids (WebAssembly 2.0 §5.5.2, plus tag from exception handling).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// order is the position of each known section id in a module.
var order = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5,
	secTag: 6, secGlobal: 7, secExport: 8, secStart: 9, secElement: 10,
	secDataCount: 11, secCode: 12, secData: 13,
}

type section struct {
	id   byte
	body []byte
}

// Instrument returns a copy of the binary module wasm with the fuel checks
// described in the package documentation. It never modifies wasm. Errors
// wrap ErrMalformed or ErrUnsupported.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%w: no \\0asm magic", ErrMalformed)
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("%w: binary format version %x, want 1", ErrUnsupported, wasm[4:8])
	}
	r := reader{b: wasm, off: 8}
	var secs []section
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		if id > secTag {
			return nil, r.errorf(ErrUnsupported, "section id %d", id)
		}
		body, err := r.vecBytes()
		if err != nil {
			return nil, err
		}
		secs = append(secs, section{id, body})
	}

	var m module
	for _, s := range secs {
		var err error
		switch s.id {
		case secType:
			m.numTypes, err = count(s.body)
		case secImport:
			err = m.countImports(s.body)
		case secGlobal:
			m.numGlobals, err = count(s.body)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
	}
	m.fuel = m.numImportedGlobals + m.numGlobals
	m.yield = m.numImportedFuncs

	out := make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, wasm[:8]...)
	added := map[byte]bool{}
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// emitMissing adds the sections Instrument needs that the module lacks,
	// before the first section that must follow them.
	need := []byte{secType, secImport, secGlobal}
	have := map[byte]bool{}
	for _, s := range secs {
		have[s.id] = true
	}
	emitMissing := func(before int) {
		for _, id := range need {
			if !have[id] && !added[id] && order[id] < before {
				added[id] = true
				body, _ := m.rewrite(section{id: id}, true)
				emit(id, body)
			}
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			emitMissing(order[s.id])
		}
		body, keep := m.rewrite(s, false)
		if m.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, m.err)
		}
		if keep {
			emit(s.id, body)
		}
	}
	emitMissing(len(order) + 1)
	return out, nil
}

// module is what Instrument learned about a module, and the first error
// met while rewriting it.
type module struct {
	numTypes           uint32
	numImportedFuncs   uint32
	numImportedGlobals uint32
	numGlobals         uint32
	fuel               uint32 // index of the added global
	yield              uint32 // index of the added import
	err                error

	// Buffers reused from one function body to the next.
	edits   []edit
	open    []int
	scratch []byte
}

// fn renumbers a function index of the original module.
func (m *module) fn(i uint32) uint32 {
	if i >= m.numImportedFuncs {
		return i + 1
	}
	return i
}

func count(b []byte) (uint32, error) {
	r := reader{b: b}
	return r.u32()
}

func (m *module) countImports(b []byte) error {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		if _, err := r.vecBytes(); err != nil { // module
			return err
		}
		if _, err := r.vecBytes(); err != nil { // name
			return err
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0x00: // func typeidx
			m.numImportedFuncs++
			_, err = r.u32()
		case 0x01: // table: reftype limits
			if err = r.valType(); err == nil {
				err = r.limits()
			}
		case 0x02: // memory: limits
			err = r.limits()
		case 0x03: // global: valtype mut
			m.numImportedGlobals++
			if err = r.valType(); err == nil {
				_, err = r.byte()
			}
		case 0x04: // tag: attribute typeidx
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			return r.errorf(ErrMalformed, "import kind %#x", kind)
		}
		if err != nil {
			return err
		}
	}
	return r.end()
}

// rewrite returns the new body of section s (an empty one when create is
// set) and whether to keep it.
func (m *module) rewrite(s section, create bool) ([]byte, bool) {
	var out []byte
	var err error
	switch s.id {
	case secType:
		out, err = m.rewriteVec(s.body, create, nil, func(out []byte) []byte {
			return append(out, 0x60, 0x00, 0x00) // func [] -> []
		})
	case secImport:
		out, err = m.rewriteVec(s.body, create, nil, func(out []byte) []byte {
			out = appendName(out, ImportModule)
			out = appendName(out, ImportName)
			out = append(out, 0x00)
			return appendU32(out, m.numTypes)
		})
	case secGlobal:
		if !create {
			out, err = m.rewriteVec(s.body, false, func(r *reader, out []byte) ([]byte, error) {
				start := r.off
				if err := r.valType(); err != nil {
					return nil, err
				}
				if _, err := r.byte(); err != nil {
					return nil, err
				}
				out = append(out, r.b[start:r.off]...)
				return m.constExpr(r, out)
			}, m.appendFuelGlobal)
		} else {
			out, err = m.rewriteVec(nil, true, nil, m.appendFuelGlobal)
		}
	case secExport:
		out, err = m.rewriteVec(s.body, false, func(r *reader, out []byte) ([]byte, error) {
			name, err := r.vecBytes()
			if err != nil {
				return nil, err
			}
			kind, err := r.byte()
			if err != nil {
				return nil, err
			}
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			if kind == 0x00 {
				idx = m.fn(idx)
			}
			out = appendU32(out, uint32(len(name)))
			out = append(out, name...)
			out = append(out, kind)
			return appendU32(out, idx), nil
		}, nil)
	case secStart:
		r := reader{b: s.body}
		var idx uint32
		if idx, err = r.u32(); err == nil {
			err = r.end()
		}
		out = appendU32(nil, m.fn(idx))
	case secElement:
		out, err = m.rewriteVec(s.body, false, m.element, nil)
	case secCode:
		out, err = m.rewriteVec(s.body, false, m.code, nil)
	case secCustom:
		return m.custom(s.body)
	default:
		return s.body, true
	}
	if err != nil && m.err == nil {
		m.err = err
	}
	return out, true
}

// rewriteVec rewrites a section that is a vector (an empty one when
// create is set): each element through elem, or copied whole when elem is
// nil, then one more element made by extra, if not nil.
func (m *module) rewriteVec(b []byte, create bool, elem func(*reader, []byte) ([]byte, error), extra func([]byte) []byte) ([]byte, error) {
	var n uint32
	r := reader{b: b}
	if !create {
		var err error
		if n, err = r.u32(); err != nil {
			return nil, err
		}
	}
	total := n
	if extra != nil {
		total++
	}
	out := make([]byte, 0, len(b)+len(b)/8+32)
	out = appendU32(out, total)
	if elem == nil || create {
		// Copied whole: the elements need no change.
		out = append(out, b[r.off:]...)
	} else {
		for range n {
			var err error
			if out, err = elem(&r, out); err != nil {
				return nil, err
			}
		}
		if err := r.end(); err != nil {
			return nil, err
		}
	}
	if extra != nil {
		out = extra(out)
	}
	return out, nil
}

func (m *module) appendFuelGlobal(out []byte) []byte {
	out = append(out, 0x7f, 0x01, 0x41) // i32, mutable, i32.const
	out = appendS32(out, Budget)
	return append(out, 0x0b)
}

// element rewrites one element segment (WebAssembly 2.0 §5.5.12).
func (m *module) element(r *reader, out []byte) ([]byte, error) {
	flags, err := r.u32()
	if err != nil {
		return nil, err
	}
	if flags > 7 {
		return nil, r.errorf(ErrMalformed, "element segment flags %d", flags)
	}
	out = appendU32(out, flags)
	if flags&2 != 0 && flags&1 == 0 { // explicit table index
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = appendU32(out, t)
	}
	if flags&1 == 0 { // active: offset expression
		if out, err = m.constExpr(r, out); err != nil {
			return nil, err
		}
	}
	if flags&3 != 0 { // elemkind or reftype
		b, err := r.byte()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out = appendU32(out, n)
	for range n {
		if flags&4 == 0 { // function indices
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = appendU32(out, m.fn(idx))
		} else if out, err = m.constExpr(r, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// constExpr copies a constant expression, renumbering ref.func.
func (m *module) constExpr(r *reader, out []byte) ([]byte, error) {
	w := walker{m: m, r: reader{b: r.b, off: r.off}, entry: -1}
	if err := w.walk(false); err != nil {
		return nil, err
	}
	out = w.emit(out, r.b[r.off:w.r.off], r.off)
	r.off = w.r.off
	return out, nil
}

// code rewrites one function body: locals, then the expression with a
// check at its start and at the start of every loop body.
func (m *module) code(r *reader, out []byte) ([]byte, error) {
	body, err := r.vecBytes()
	if err != nil {
		return nil, err
	}
	br := reader{b: body}
	n, err := br.u32()
	if err != nil {
		return nil, err
	}
	for range n {
		if _, err := br.u32(); err != nil {
			return nil, err
		}
		if err := br.valType(); err != nil {
			return nil, err
		}
	}
	locals := body[:br.off]
	w := walker{m: m, r: br, edits: m.edits[:0], open: m.open[:0]}
	w.entry = w.site(br.off, len(body)-br.off)
	err = w.walk(true)
	m.edits, m.open = w.edits, w.open
	if err != nil {
		return nil, err
	}
	if w.r.off != len(body) {
		return nil, br.errorf(ErrMalformed, "function body continues after its end")
	}
	size := len(body)
	for _, e := range w.edits {
		switch {
		case e.dropped:
		case e.site:
			m.scratch = m.appendCheck(m.scratch[:0], e.val)
			size += len(m.scratch)
		default:
			m.scratch = appendU32(m.scratch[:0], e.val)
			size += len(m.scratch) - (e.end - e.at)
		}
	}
	out = appendU32(out, uint32(size))
	start := len(out)
	out = append(out, locals...)
	out = w.emit(out, body[len(locals):], len(locals))
	if len(out)-start != size {
		panic("meter: the rewritten body's size was miscounted") // a bug here, whatever the input
	}
	return out, nil
}

// custom drops DWARF sections and renumbers the "name" section; a name
// section it cannot read is dropped (it is only debugging help).
func (m *module) custom(b []byte) ([]byte, bool) {
	r := reader{b: b}
	name, err := r.vecBytes()
	if err != nil {
		m.err = err
		return nil, false
	}
	switch {
	case strings.HasPrefix(string(name), ".debug_"):
		return nil, false
	case string(name) != "name":
		return b, true
	}
	out := append([]byte(nil), b[:r.off]...)
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, false
		}
		sub, err := r.vecBytes()
		if err != nil {
			return nil, false
		}
		if id >= 1 && id <= 3 { // function, local and label names: by function index
			if sub, err = m.renameMap(sub, id != 1); err != nil {
				return nil, false
			}
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	return out, true
}

// renameMap renumbers a name map (or, indirect, an indirect name map)
// keyed by function index.
func (m *module) renameMap(b []byte, indirect bool) ([]byte, error) {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(b)+8), n)
	for range n {
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = appendU32(out, m.fn(idx))
		start := r.off
		if indirect {
			k, err := r.u32()
			if err != nil {
				return nil, err
			}
			for range k {
				if _, err := r.u32(); err != nil {
					return nil, err
				}
				if _, err := r.vecBytes(); err != nil {
					return nil, err
				}
			}
		} else if _, err := r.vecBytes(); err != nil {
			return nil, err
		}
		out = append(out, r.b[start:r.off]...)
	}
	return out, r.end()
}
