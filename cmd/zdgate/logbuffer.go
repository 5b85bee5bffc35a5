package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Log batching. At thousands of requests a second, one write(2) per access line is a large share of
// the proxy's own CPU. Like nginx's `access_log … buffer= flush=` and Envoy's file flush interval,
// zdgate keeps log lines in a bounded buffer and writes them out together:
//   - every logFlushEvery, and whenever logBufferMax bytes are pending;
//   - at once, with every line before it, for a record at WARN or above;
//   - on shutdown, before the process exits.
//
// A crash (SIGKILL, an OOM kill, a Go runtime fatal error) can therefore lose at most the last
// logFlushEvery of INFO and DEBUG lines — access lines, never a warning or an error. Memory is
// bounded: a writer that finds the buffer full writes it out itself (back-pressure), nothing is
// dropped. Only a real file (stderr) is batched; an in-memory writer gains nothing from it.
const (
	logFlushEvery = 100 * time.Millisecond
	logBufferMax  = 64 << 10
)

// logBuffer is an io.Writer that batches whole log lines (slog writes one record per Write).
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf []byte
	max int

	wmu   sync.Mutex // orders writes to w; held while writing, so Write never waits on the syscall unless full
	w     io.Writer
	spare []byte // the other half of the double buffer; guarded by wmu
}

func newLogBuffer(w io.Writer, max int) *logBuffer {
	return &logBuffer{w: w, max: max, buf: make([]byte, 0, max), spare: make([]byte, 0, max)}
}

// Write keeps p; it never fails (a failing log destination must not fail a request).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= b.max
	b.mu.Unlock()
	if full {
		b.Flush()
	}
	return len(p), nil
}

// Flush writes out what is pending, after whatever another Flush is writing.
func (b *logBuffer) Flush() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf = b.spare[:0]
	b.mu.Unlock()
	if len(out) > 0 {
		b.w.Write(out) // nowhere to report a failed log write
	}
	if cap(out) > 2*b.max {
		out = make([]byte, 0, b.max) // one huge record must not keep its buffer forever
	}
	b.spare = out[:0]
}

// run flushes on every tick until ctx ends, then once more.
func (b *logBuffer) run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			b.Flush()
			return
		case <-tick:
			b.Flush()
		}
	}
}

// flushOnWarn writes the buffer out right after a record at WARN or above, so warnings and errors
// are never delayed or lost in a crash that follows them.
type flushOnWarn struct {
	slog.Handler
	b *logBuffer
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushOnWarn) WithAttrs(as []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(as), h.b}
}
func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.b}
}

// newLogger is the slog logger of --log-format and --log-level, batched when w is a file. stop
// flushes and ends the batching; call it before the process exits.
func newLogger(cfg *Config, w io.Writer) (log *slog.Logger, stop func()) {
	return newLoggerFlushing(cfg, w, logFlushEvery)
}

func newLoggerFlushing(cfg *Config, w io.Writer, every time.Duration) (log *slog.Logger, stop func()) {
	level := cfg.logLevel // parsed by Validate (the zero value is info)
	stop = func() {}
	var buf *logBuffer
	if _, isFile := w.(*os.File); isFile {
		buf = newLogBuffer(w, logBufferMax)
		w = buf
		ctx, cancel := context.WithCancel(context.Background())
		t := time.NewTicker(every)
		done := make(chan struct{})
		go func() { defer close(done); buf.run(ctx, t.C) }()
		stop = func() { t.Stop(); cancel(); <-done }
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	if buf != nil {
		h = flushOnWarn{h, buf}
	}
	return slog.New(h), sync.OnceFunc(stop)
}
