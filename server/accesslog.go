package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// openAccessLog returns the access logger for dest ("stdout", "stderr",
// "off" or a file path) and what to close at shutdown. Lines are JSON
// (log/slog), buffered and flushed at least every 100 ms, so logging costs
// no system call per request.
func openAccessLog(dest string) (*slog.Logger, io.Closer, error) {
	var w io.Writer
	var file *os.File
	switch dest {
	case "off":
		return nil, nil, nil
	case "", "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("opening access log: %w", err)
		}
		w, file = f, f
	}
	bw := newFlushWriter(w, file)
	return slog.New(newLineHandler(bw)), bw, nil
}

// flushWriter buffers log lines and flushes them on a timer and at Close.
type flushWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	file *os.File
	stop chan struct{}
	done chan struct{}
}

func newFlushWriter(w io.Writer, file *os.File) *flushWriter {
	f := &flushWriter{bw: bufio.NewWriterSize(w, 64<<10), file: file, stop: make(chan struct{}), done: make(chan struct{})}
	go f.loop()
	return f
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	n, err := f.bw.Write(p)
	f.mu.Unlock()
	return n, err
}

func (f *flushWriter) loop() {
	defer close(f.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f.mu.Lock()
			f.bw.Flush()
			f.mu.Unlock()
		case <-f.stop:
			return
		}
	}
}

// Close flushes what is buffered and closes the file, if any.
func (f *flushWriter) Close() error {
	close(f.stop)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.bw.Flush()
	if f.file != nil {
		if cerr := f.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
