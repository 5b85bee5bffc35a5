package proxy

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// logSink is a slog handler that keeps every record, for tests that assert what an operator
// would read in the log.
type logSink struct {
	mu      sync.Mutex
	records []string // "LEVEL msg key=value ..."
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	s.mu.Lock()
	s.records = append(s.records, b.String())
	s.mu.Unlock()
	return nil
}

// find returns the records that contain every one of parts.
func (s *logSink) find(parts ...string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
next:
	for _, r := range s.records {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

func (s *logSink) logger() *slog.Logger { return slog.New(s) }
