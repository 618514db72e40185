package pluginhost

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// cappedMemory backs one VM's linear memory and refuses to grow it past
// limit bytes: memory.grow then returns -1, which guests usually turn
// into a trap. It is wazero's experimental.LinearMemory, installed per
// instance with experimental.WithMemoryAllocator, which is how a per-VM
// cap coexists with one runtime.
type cappedMemory struct {
	limit   uint64
	buf     []byte
	refused atomic.Bool
}

// Allocate implements experimental.MemoryAllocator for one instance.
func (m *cappedMemory) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	if maxBytes < m.limit {
		m.limit = maxBytes
	}
	return m
}

// Reallocate implements experimental.LinearMemory. The module's initial
// size was checked against the limit at load, so the first call never
// fails (wazero requires it not to).
func (m *cappedMemory) Reallocate(size uint64) []byte {
	if size > m.limit && m.buf != nil {
		m.refused.Store(true)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	c := max(size, min(2*uint64(cap(m.buf)), m.limit))
	nb := make([]byte, size, c)
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

// Free implements experimental.LinearMemory.
func (m *cappedMemory) Free() { m.buf = nil }

// Guest memory access for host calls. Every pointer and length comes from
// the guest, so each read or write is bounds-checked by wazero's
// api.Memory; a failure answers INVALID_MEMORY_ACCESS. Views returned by
// read are only valid until the next call into the guest (its allocator
// may grow memory), so they are never kept across malloc.

func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	return v.mem.Read(ptr, size)
}

func (v *vm) writeU32(ptr, val uint32) bool {
	return v.mem.WriteUint32Le(ptr, val)
}

func (v *vm) writeU64(ptr uint32, val uint64) bool {
	return v.mem.WriteUint64Le(ptr, val)
}

// outPtrs checks that the two result words (a pointer and a size) a host
// call writes are inside memory before any work is done.
func (v *vm) outPtrs(retPtr, retSize uint32) bool {
	_, ok1 := v.mem.Read(retPtr, 4)
	_, ok2 := v.mem.Read(retSize, 4)
	return ok1 && ok2
}

// alloc allocates n bytes in the guest and returns a view of them, or
// false if the allocator returned 0 or a range outside memory.
func (v *vm) allocView(n uint32) (uint32, []byte, bool) {
	ptr := v.malloc(n)
	if ptr == 0 {
		return 0, nil, false
	}
	b, ok := v.mem.Read(ptr, n)
	return ptr, b, ok
}

// returnPtrSize writes the result pointer and size words.
func (v *vm) returnPtrSize(retPtr, retSize, ptr, size uint32) bool {
	return v.writeU32(retPtr, ptr) && v.writeU32(retSize, size)
}

// copyOut copies data into freshly allocated guest memory and writes its
// pointer and size to retPtr and retSize, as the spec's return_*_data and
// return_*_size parameters ask. Empty data is returned as (0, 0) without
// an allocation, as Envoy does.
func (v *vm) copyOut(data []byte, retPtr, retSize uint32) bool {
	if len(data) == 0 {
		return v.returnPtrSize(retPtr, retSize, 0, 0)
	}
	if uint64(len(data)) > v.lim.limit {
		return false // cannot fit; also keeps the length within uint32
	}
	ptr, dst, ok := v.allocView(uint32(len(data)))
	if !ok {
		return false
	}
	copy(dst, data)
	return v.returnPtrSize(retPtr, retSize, ptr, uint32(len(data)))
}

// copyOutString is copyOut for a string, without converting it.
func (v *vm) copyOutString(s string, retPtr, retSize uint32) bool {
	if len(s) == 0 {
		return v.returnPtrSize(retPtr, retSize, 0, 0)
	}
	if uint64(len(s)) > v.lim.limit {
		return false
	}
	ptr, dst, ok := v.allocView(uint32(len(s)))
	if !ok {
		return false
	}
	copy(dst, s)
	return v.returnPtrSize(retPtr, retSize, ptr, uint32(len(s)))
}

// copyOutU64 returns an 8-byte little-endian integer, Envoy's int
// attribute encoding.
func (v *vm) copyOutU64(x uint64, retPtr, retSize uint32) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], x)
	return v.copyOut(b[:], retPtr, retSize)
}

// lineLogger turns a VM's WASI stdout or stderr into log records, one per
// line (spec "wasi_snapshot_preview1.fd_write": stdout at INFO, stderr at
// ERROR). Writes happen during callbacks, which hold the VM.
type lineLogger struct {
	v     *vm
	level slog.Level
	buf   []byte
}

const maxLogLine = 4096

func (l *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != '\n' {
			i++
		}
		l.buf = append(l.buf, p[:i]...)
		if i < len(p) || len(l.buf) >= maxLogLine {
			l.flush()
			if i < len(p) {
				i++
			}
		}
		p = p[i:]
	}
	return n, nil
}

func (l *lineLogger) flush() {
	line := l.buf
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	if l.level >= slog.LevelError {
		l.v.lastErr = string(line)
	}
	if lg := l.v.log; lg.Enabled(context.Background(), l.level) {
		attrs := []any{"vm", l.v.slot}
		if sp := l.v.effSP; sp != nil && sp.s.requestID() != "" {
			attrs = append(attrs, "request", sp.s.requestID())
		}
		lg.Log(context.Background(), l.level, string(line), attrs...)
	}
	l.buf = l.buf[:0]
}
