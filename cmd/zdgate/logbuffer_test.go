package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each Write it gets.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	b      bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.b.Write(p)
}

func (c *countingWriter) snapshot() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.b.String()
}

func TestLogBufferBatchesUntilTickAndFlushesOnWarn(t *testing.T) {
	w := &countingWriter{}
	b := newLogBuffer(w, 1<<20)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.run(ctx, tick) }()
	log := slog.New(flushOnWarn{slog.NewTextHandler(b, nil), b})

	for i := range 1000 {
		log.Info("request", "n", i)
	}
	if n, _ := w.snapshot(); n != 0 {
		t.Fatalf("%d writes before any tick; want the lines kept", n)
	}
	tick <- time.Now()
	tick <- time.Now() // the first tick's flush has finished once the second is received
	n, out := w.snapshot()
	if n != 1 || strings.Count(out, "msg=request") != 1000 {
		t.Fatalf("after a tick: %d writes, %d lines; want 1 write of 1000 lines", n, strings.Count(out, "msg=request"))
	}
	log.Info("before the warning")
	log.Warn("upstream slow")
	if _, out := w.snapshot(); !strings.Contains(out, "before the warning") || !strings.Contains(out, "upstream slow") {
		t.Fatalf("a warning must be written at once, with the lines before it:\n%s", out)
	}
	log.Info("last words")
	cancel()
	<-done
	if _, out := w.snapshot(); !strings.HasSuffix(out, "msg=\"last words\"\n") {
		t.Fatalf("stop did not flush the last line:\n%s", out)
	}
}

func TestLogBufferIsBoundedAndKeepsEveryLine(t *testing.T) {
	w := &countingWriter{}
	const max = 4 << 10
	b := newLogBuffer(w, max)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(b, "goroutine=%d line=%d padding=%s\n", g, i, strings.Repeat("x", 40))
				b.mu.Lock()
				pending := len(b.buf)
				b.mu.Unlock()
				if pending > 2*max {
					t.Errorf("%d bytes pending; want at most about %d", pending, max)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.Flush()
	writes, out := w.snapshot()
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if seen[sc.Text()] {
			t.Fatalf("line written twice: %s", sc.Text())
		}
		seen[sc.Text()] = true
	}
	if len(seen) != 8*500 {
		t.Fatalf("%d distinct whole lines; want 4000 (none lost, none torn)", len(seen))
	}
	if writes >= 4000/10 {
		t.Errorf("%d writes for 4000 lines; want them batched", writes)
	}
}

// TestLoggerBatchesOnlyFiles: the process's stderr (a file) is batched and flushed by stop; an
// in-memory writer is written through.
func TestLoggerBatchesOnlyFiles(t *testing.T) {
	cfg := &Config{}
	cfg.options()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	log, stop := newLoggerFlushing(cfg, w, time.Hour) // no tick during the test: only stop flushes
	log.Info("request", "route", "upstream")
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, _ := r.Read(make([]byte, 1)); n != 0 {
		t.Fatal("an info line reached the file at once; want it batched")
	}
	stop()
	w.Close()
	r.SetReadDeadline(time.Time{})
	got, _ := io.ReadAll(r)
	if !strings.Contains(string(got), `"msg":"request"`) {
		t.Fatalf("after stop the file holds %q; want the access line", got)
	}

	var mem bytes.Buffer
	log, stop = newLogger(cfg, &mem)
	defer stop()
	log.Info("request")
	if !strings.Contains(mem.String(), `"msg":"request"`) {
		t.Fatalf("in-memory writer got %q; want the line at once", mem.String())
	}
}
