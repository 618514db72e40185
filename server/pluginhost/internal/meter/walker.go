package meter

import (
	"fmt"
)

// edit is a change to an expression: a check inserted at at, or the
// function index in [at, end) replaced by val. A dropped check is not
// inserted.
type edit struct {
	at, end int
	val     uint32 // the new index, or the check's cost
	site    bool
	dropped bool
	extra   int // bytes a loop's check is charged besides its body
}

// walker decodes one expression (a function body, or a constant
// expression) and records the edits it needs.
type walker struct {
	m     *module
	r     reader
	edits []edit
	open  []int // per open block: the index of its check in edits, or -1

	// entry is the index of the function entry's check in edits, or -1.
	// While straight, every instruction so far falls through to the next,
	// so the first loop is reached on every call: its check makes the
	// entry's redundant, and it is charged the bytes before it (extra).
	entry    int
	straight bool
	extra    int
}

// site records a check at offset at costing cost bytes of fuel, and
// returns its index in w.edits.
func (w *walker) site(at, cost int) int {
	w.edits = append(w.edits, edit{at: at, end: at, val: clampCost(cost), site: true})
	return len(w.edits) - 1
}

func clampCost(n int) uint32 {
	return uint32(min(max(n, 1), Budget))
}

// renumber records that the function index just read, from start, is to
// be renumbered.
func (w *walker) renumber(start int, idx uint32) {
	w.edits = append(w.edits, edit{at: start, end: w.r.off, val: w.m.fn(idx)})
}

// emit appends seg, the bytes of r.b from offset base that the walk
// covered, with the edits applied.
func (w *walker) emit(out, seg []byte, base int) []byte {
	pos := base
	for _, e := range w.edits {
		if e.dropped {
			continue
		}
		out = append(out, seg[pos-base:e.at-base]...)
		if e.site {
			out = w.m.appendCheck(out, e.val)
		} else {
			out = appendU32(out, e.val)
		}
		pos = e.end
	}
	return append(out, seg[pos-base:]...)
}

// appendCheck appends the check costing cost:
//
//	global.get $fuel
//	i32.const  cost
//	i32.sub
//	global.set $fuel
//	global.get $fuel
//	i32.const  0
//	i32.le_s
//	if
//	  call       $yield
//	  i32.const  Budget
//	  global.set $fuel
//	end
//
// It needs no local and leaves the operand stack as it found it, so it is
// valid at the start of any block.
func (m *module) appendCheck(out []byte, cost uint32) []byte {
	out = append(out, 0x23)
	out = appendU32(out, m.fuel)
	out = append(out, 0x41)
	out = appendS32(out, int32(cost))
	out = append(out, 0x6b, 0x24)
	out = appendU32(out, m.fuel)
	out = append(out, 0x23)
	out = appendU32(out, m.fuel)
	out = append(out, 0x41, 0x00, 0x4c, 0x04, 0x40, 0x10)
	out = appendU32(out, m.yield)
	out = append(out, 0x41)
	out = appendS32(out, Budget)
	out = append(out, 0x24)
	out = appendU32(out, m.fuel)
	return append(out, 0x0b)
}

// Immediates of the instructions walk decodes without its switch.
const (
	immSlow   = iota // decoded by the switch
	immNone          // no immediate
	immIndex         // one u32
	immMemArg        // memarg
	immI64           // s64
	immF32           // 4 bytes
	immF64           // 8 bytes
)

// fast classifies the instructions 0x20-0xc4: variables, memory, constants
// and numbers.
var fast = func() (t [256]byte) {
	for op := 0x20; op <= 0x26; op++ { // local.*, global.*, table.get/set
		t[op] = immIndex
	}
	for op := 0x28; op <= 0x3e; op++ { // loads, stores
		t[op] = immMemArg
	}
	t[0x3f], t[0x40] = immIndex, immIndex // memory.size, memory.grow
	t[0x41] = immIndex                    // i32.const: an s32 is as long as a u32
	t[0x42], t[0x43], t[0x44] = immI64, immF32, immF64
	for op := 0x45; op <= 0xc4; op++ {
		t[op] = immNone
	}
	return t
}()

// walk decodes instructions up to the end of the expression that starts
// at w.r.off, recording a check at the start of each loop body when code
// is set, and the renumbering of every function index.
func (w *walker) walk(code bool) error {
	r := &w.r
	w.open = append(w.open[:0], -1)
	w.straight = code && w.entry >= 0
	for len(w.open) > 0 {
		start := r.off
		if start >= len(r.b) {
			return r.errorf(ErrMalformed, "unexpected end")
		}
		op := r.b[start]
		r.off++
		// The common instructions first; none of them is control flow.
		var err error
		switch fast[op] {
		case immNone:
			continue
		case immIndex:
			err = r.skipLEB(5)
		case immMemArg:
			err = r.memArg()
		case immI64:
			err = r.skipLEB(10)
		case immF32:
			err = r.skip(4)
		case immF64:
			err = r.skip(8)
		}
		if err != nil {
			return err
		}
		if fast[op] != immSlow {
			continue
		}
		if w.straight && op != 0x02 && (op <= 0x1f || op == 0xd2) {
			// Only block and plain instructions keep the way straight
			// (ref.func is plain but cheap to exclude).
			if op == 0x03 { // loop
				w.edits[w.entry].dropped = true
				w.extra = start - w.edits[w.entry].at
			}
			w.straight = false
		}
		switch {
		case op == 0x02 || op == 0x04: // block, if
			if err := r.blockType(); err != nil {
				return err
			}
			w.open = append(w.open, -1)
		case op == 0x03: // loop
			if err := r.blockType(); err != nil {
				return err
			}
			site := -1
			if code {
				site = w.site(r.off, 0)
				w.edits[site].extra, w.extra = w.extra, 0
			}
			w.open = append(w.open, site)
		case op == 0x1f: // try_table blocktype vec(catch)
			if err := r.blockType(); err != nil {
				return err
			}
			n, err := r.u32()
			if err != nil {
				return err
			}
			for range n {
				kind, err := r.byte()
				if err != nil {
					return err
				}
				if kind > 3 {
					return r.errorf(ErrMalformed, "catch kind %d", kind)
				}
				if kind < 2 { // catch, catch_ref: tag
					if _, err := r.u32(); err != nil {
						return err
					}
				}
				if _, err := r.u32(); err != nil { // label
					return err
				}
			}
			w.open = append(w.open, -1)
		case op == 0x0b: // end
			if site := w.open[len(w.open)-1]; site >= 0 {
				w.edits[site].val = clampCost(start - w.edits[site].at + w.edits[site].extra)
			}
			w.open = w.open[:len(w.open)-1]
		case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
			idx, err := r.u32()
			if err != nil {
				return err
			}
			w.renumber(start+1, idx)
		case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0a || op == 0x0f ||
			op == 0x1a || op == 0x1b || op == 0xd1:
			// unreachable, nop, else, throw_ref, return, drop, select,
			// ref.is_null: no immediate.
		case op == 0x08 || op == 0x0c || op == 0x0d || op == 0x14 || op == 0x15:
			// throw tag, br, br_if, call_ref, return_call_ref: one index.
			if _, err := r.u32(); err != nil {
				return err
			}
		case op == 0x0e: // br_table vec(label) label
			n, err := r.u32()
			if err != nil {
				return err
			}
			for range n + 1 {
				if _, err := r.u32(); err != nil {
					return err
				}
			}
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect: type table
			if _, err := r.u32(); err != nil {
				return err
			}
			if _, err := r.u32(); err != nil {
				return err
			}
		case op == 0x1c: // select vec(valtype)
			n, err := r.u32()
			if err != nil {
				return err
			}
			for range n {
				if err := r.valType(); err != nil {
					return err
				}
			}
		case op == 0xd0: // ref.null heaptype
			err = r.skipLEB(5)
		case op == 0xfc:
			err = w.prefixFC()
		case op == 0xfd:
			err = w.prefixFD()
		case op == 0xfe:
			err = w.prefixFE()
		default:
			return r.errorf(ErrUnsupported, "instruction %#x", op)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prefixFC decodes the 0xFC instructions: saturating truncation, bulk
// memory and table instructions.
func (w *walker) prefixFC() error {
	r := &w.r
	sub, err := r.u32()
	if err != nil {
		return err
	}
	var n int // index immediates
	switch {
	case sub <= 7:
	case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
		n = 2
	case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		n = 1
	default:
		return r.errorf(ErrUnsupported, "instruction 0xfc %d", sub)
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// prefixFD decodes the 0xFD (SIMD) instructions.
func (w *walker) prefixFD() error {
	r := &w.r
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads, stores
		return r.memArg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		return r.skip(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		return r.skip(1)
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		if err := r.memArg(); err != nil {
			return err
		}
		return r.skip(1)
	case sub <= 0x113: // no immediate (relaxed SIMD included)
		return nil
	}
	return r.errorf(ErrUnsupported, "instruction 0xfd %d", sub)
}

// prefixFE decodes the 0xFE (threads) instructions.
func (w *walker) prefixFE() error {
	r := &w.r
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub == 3: // atomic.fence
		return r.skip(1)
	case sub <= 0x4e:
		return r.memArg()
	}
	return r.errorf(ErrUnsupported, "instruction 0xfe %d", sub)
}

// reader decodes the binary format.
type reader struct {
	b   []byte
	off int
}

func (r *reader) errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", kind, r.off, fmt.Sprintf(format, args...))
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.errorf(ErrMalformed, "unexpected end")
	}
	b := r.b[r.off]
	r.off++
	return b, nil
}

func (r *reader) skip(n int) error {
	if len(r.b)-r.off < n {
		return r.errorf(ErrMalformed, "unexpected end")
	}
	r.off += n
	return nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; ; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && b > 0x0f {
			return 0, r.errorf(ErrMalformed, "integer too large")
		}
		v |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
}

// skipLEB skips a LEB128 of at most max bytes.
func (r *reader) skipLEB(max int) error {
	end := min(r.off+max, len(r.b))
	for i := r.off; i < end; i++ {
		if r.b[i] < 0x80 {
			r.off = i + 1
			return nil
		}
	}
	if end == len(r.b) && end-r.off < max {
		r.off = end
		return r.errorf(ErrMalformed, "unexpected end")
	}
	r.off = end
	return r.errorf(ErrMalformed, "integer too long")
}

func (r *reader) vecBytes() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	start := r.off
	if err := r.skip(int(n)); err != nil {
		return nil, err
	}
	return r.b[start:r.off], nil
}

// valType reads a value type: a number, vector or reference type of
// WebAssembly 2.0.
func (r *reader) valType() error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	if !isValType(b) {
		return r.errorf(ErrUnsupported, "value type %#x", b)
	}
	return nil
}

func isValType(b byte) bool {
	switch b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69: // i32 i64 f32 f64 v128 funcref externref exnref
		return true
	}
	return false
}

// blockType reads a block type: empty, one value type or a type index.
func (r *reader) blockType() error {
	if r.off < len(r.b) {
		if b := r.b[r.off]; b == 0x40 || isValType(b) {
			r.off++
			return nil
		}
	}
	return r.skipLEB(5)
}

// memArg reads a memarg: alignment (with bit 6, a memory index follows)
// and offset.
func (r *reader) memArg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return r.skipLEB(10)
}

// limits reads table or memory limits.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags > 7 {
		return r.errorf(ErrMalformed, "limits flags %#x", flags)
	}
	if err := r.skipLEB(10); err != nil {
		return err
	}
	if flags&1 != 0 {
		return r.skipLEB(10)
	}
	return nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return r.errorf(ErrMalformed, "%d bytes left over", len(r.b)-r.off)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
