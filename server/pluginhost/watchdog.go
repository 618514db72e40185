package pluginhost

import (
	"sync"
	"sync/atomic"
	"time"
)

// watchTick is how often the watchdog looks at the VMs running a callback.
// A callback is stopped between CallbackTimeout and CallbackTimeout plus
// two ticks after it started.
const watchTick = 10 * time.Millisecond

// killedBit is set in vm.run by the watchdog when it stops the callback
// running.
const killedBit = 1 << 63

// watchdog enforces callback deadlines for every VM of a Host, so that a
// callback costs no clock read and no timer: a callback increments its
// VM's run counter when it starts (odd: running) and again when it ends,
// with a compare-and-swap that fails if the watchdog stopped it meanwhile.
// The watchdog's goroutine ticks only while callbacks run: the first
// callback after a quiet tick wakes it (arm).
type watchdog struct {
	mu  sync.Mutex
	vms map[*vm]struct{}

	armed atomic.Bool
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newWatchdog() *watchdog {
	w := &watchdog{
		vms:  make(map[*vm]struct{}),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.loop()
	return w
}

// add and remove register a VM while it lives.
func (w *watchdog) add(v *vm) {
	w.mu.Lock()
	w.vms[v] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(v *vm) {
	w.mu.Lock()
	delete(w.vms, v)
	w.mu.Unlock()
}

// arm makes sure the watchdog ticks. A callback calls it after marking its
// VM running; see loop for why that order matters.
func (w *watchdog) arm() {
	if !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// close stops the watchdog's goroutine.
func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

func (w *watchdog) loop() {
	defer close(w.done)
	t := time.NewTicker(watchTick)
	t.Stop()
	ticking := false
	for {
		select {
		case <-w.stop:
			t.Stop()
			return
		case <-w.kick:
			if !ticking {
				t.Reset(watchTick)
				ticking = true
			}
		case now := <-t.C:
			if w.scan(now) {
				continue
			}
			// Nothing runs: stop ticking. A callback that starts after
			// armed is false kicks; one that read armed before it turned
			// false had already marked its VM running, so the second scan
			// sees it.
			w.armed.Store(false)
			if w.scan(now) {
				w.armed.Store(true)
				continue
			}
			t.Stop()
			ticking = false
		}
	}
}

// scan stops the callbacks that have run past their timeout and reports
// whether any callback runs.
func (w *watchdog) scan(now time.Time) (busy bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for v := range w.vms {
		run := v.run.Load()
		if run&1 == 0 || run&killedBit != 0 {
			continue
		}
		busy = true
		if run != v.wSeen {
			v.wSeen, v.wSince = run, now // first seen: it started since the last tick
			continue
		}
		if now.Sub(v.wSince) >= time.Duration(v.runTimeout.Load()) && v.run.CompareAndSwap(run, run|killedBit) {
			v.killNow()
		}
	}
	return busy
}
