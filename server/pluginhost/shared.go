package pluginhost

import (
	"sync"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// Bounds on host-wide shared state, so that guests cannot exhaust the
// host's memory through it. Past them the host call answers
// INTERNAL_FAILURE.
const (
	maxSharedDataBytes = 64 << 20
	maxQueueItems      = 10000
	maxQueueBytes      = 64 << 20
)

// sharedData is the host-wide key-value store of proxy_get_shared_data and
// proxy_set_shared_data (spec "Shared Key-Value Store"), shared by every
// plugin of every chain. Each write gets a new compare-and-swap value.
// Stored values are never modified in place, so a reader may copy one
// into a guest after releasing the lock.
type sharedData struct {
	mu    sync.RWMutex
	m     map[string]sharedEntry
	cas   uint32
	bytes int
}

type sharedEntry struct {
	val []byte
	cas uint32
}

func (d *sharedData) init() { d.m = make(map[string]sharedEntry) }

// get returns the value and CAS of key.
func (d *sharedData) get(key []byte) ([]byte, uint32, bool) {
	d.mu.RLock()
	e, ok := d.m[string(key)]
	d.mu.RUnlock()
	return e.val, e.cas, ok
}

// set stores a copy of val under key. A non-zero cas must match the
// key's current CAS; for a key that does not exist yet any cas is
// accepted, as in Envoy.
func (d *sharedData) set(key, val []byte, cas uint32) abi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[string(key)]
	if ok && cas != 0 && cas != e.cas {
		return abi.StatusCASMismatch
	}
	grow := len(val) - len(e.val)
	if !ok {
		grow += len(key)
	}
	if d.bytes+grow > maxSharedDataBytes {
		return abi.StatusInternalFailure
	}
	d.bytes += grow
	d.cas++
	if d.cas == 0 {
		d.cas++
	}
	d.m[string(key)] = sharedEntry{val: append([]byte(nil), val...), cas: d.cas}
	return abi.StatusOK
}

// queueOwner is the VM slot of the plugin that registered a queue: it gets
// proxy_on_queue_ready when an item arrives, in whichever VM holds the
// slot then (or another VM of the plugin while the slot is empty).
type queueOwner struct {
	p    *plugin
	slot int
}

type sharedQueue struct {
	items [][]byte
	bytes int
	owner queueOwner
}

type queueKey struct{ vmID, name string }

// sharedQueues holds the host-wide queues of proxy_register_shared_queue
// (spec "Shared Queues"), named by VM ID and name.
type sharedQueues struct {
	mu     sync.Mutex
	byName map[queueKey]uint32
	byID   map[uint32]*sharedQueue
	next   uint32
}

func (q *sharedQueues) init() {
	q.byName = make(map[queueKey]uint32)
	q.byID = make(map[uint32]*sharedQueue)
}

// register opens or creates the queue. The first registrant owns it; a
// later one takes it over when the owner's chain was closed (a reload).
func (q *sharedQueues) register(vmID, name string, owner queueOwner) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := queueKey{vmID, name}
	if id, ok := q.byName[k]; ok {
		sq := q.byID[id]
		if sq.owner.p == nil || sq.owner.p.isClosed() {
			sq.owner = owner
		}
		return id
	}
	q.next++
	id := q.next
	q.byName[k] = id
	q.byID[id] = &sharedQueue{owner: owner}
	return id
}

func (q *sharedQueues) resolve(vmID, name []byte) (uint32, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id, ok := q.byName[queueKey{string(vmID), string(name)}]
	return id, ok
}

// enqueue appends a copy of item and returns who to notify.
func (q *sharedQueues) enqueue(id uint32, item []byte) (queueOwner, abi.Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.byID[id]
	if !ok {
		return queueOwner{}, abi.StatusNotFound
	}
	if len(sq.items) >= maxQueueItems || sq.bytes+len(item) > maxQueueBytes {
		return queueOwner{}, abi.StatusInternalFailure
	}
	sq.items = append(sq.items, append([]byte(nil), item...))
	sq.bytes += len(item)
	return sq.owner, abi.StatusOK
}

func (q *sharedQueues) dequeue(id uint32) ([]byte, abi.Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.byID[id]
	if !ok {
		return nil, abi.StatusNotFound
	}
	if len(sq.items) == 0 {
		return nil, abi.StatusEmpty
	}
	item := sq.items[0]
	sq.items[0] = nil
	sq.items = sq.items[1:]
	sq.bytes -= len(item)
	if len(sq.items) == 0 {
		sq.items = nil
	}
	return item, abi.StatusOK
}

func (p *plugin) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
