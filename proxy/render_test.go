package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// leaveMidBody sends GET path over a raw connection, reads the response header and a little of
// the body, and hangs up.
func leaveMidBody(t *testing.T, st *stack, path string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(st.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: zdgate.test\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("GET %s = %d; want a 200 that the client leaves half-read", path, res.StatusCode)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 1024)); err != nil {
		t.Fatalf("reading the start of the body: %v", err)
	}
	// Linger 0: the close is a reset, so zdgate's next writes fail at once.
	conn.(*net.TCPConn).SetLinger(0)
}

// waitLog waits (bounded) for a log record with every one of parts.
func waitLog(t *testing.T, logs *logSink, parts ...string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if found := logs.find(parts...); len(found) > 0 {
			return found[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log record with %q; have:\n%s", parts, strings.Join(logs.find(), "\n"))
		}
	}
}

// endless writes a 200 body until writing fails or it has written 256 MiB, and returns the
// write's error: a handler whose client went away mid-write.
func endless(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain")
	chunk := []byte(strings.Repeat("x", 32<<10))
	for range 8 << 10 {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		http.NewResponseController(w).Flush()
	}
	return nil
}

// TestClientGoneMidWriteIs499: a client that hangs up while zdgate writes a response is logged
// and counted as 499, at the access log's level, with nothing rendered after the body and no
// ERROR line: on a proxied page (the reverse proxy aborts the copy) and on a route of zdgate's
// own whose handler returns the failed write's error.
func TestClientGoneMidWriteIs499(t *testing.T) {
	for _, tc := range []struct {
		name, path, route string
	}{
		{"proxied", "/public/stream", "upstream"},
		{"own route", "/test/stream", "/test/stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logSink{}
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { endless(w, r) })
			st := newStack(t, stackOpts{upstream: app, mutate: func(c *Config) {
				c.Logger = logs.logger()
				c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)}
			}})
			st.proxy.mux.Handle("GET /test/stream", st.proxy.handle("/test/stream", endless))

			leaveMidBody(t, st, tc.path)
			line := waitLog(t, logs, "INFO request ", "route="+tc.route)
			if !strings.Contains(line, "status=499") {
				t.Errorf("access line = %q; want status=499", line)
			}
			if n := counterValue(t, st.reg, "zdgate_http_requests_total", "code", "499"); n != 1 {
				t.Errorf("zdgate_http_requests_total{code=499} = %v; want 1", n)
			}
			if n := counterValue(t, st.reg, "zdgate_http_requests_total", "code", "500"); n != 0 {
				t.Errorf("zdgate_http_requests_total{code=500} = %v; want 0", n)
			}
			if n := counterValue(t, st.reg, "zdgate_http_errors_total", "code", "internal_error"); n != 0 {
				t.Errorf("zdgate_http_errors_total{code=internal_error} = %v; want nothing rendered", n)
			}
			if errs := logs.find("ERROR"); len(errs) > 0 {
				t.Errorf("ERROR lines for a client that left: %q", errs)
			}
		})
	}
}

// TestFailureAfterTheResponseStarted: a handler that fails after it has written part of its
// answer gets nothing appended (no {"error":...} after a 200 body): the failure is logged at
// ERROR, and the connection is cut so the client cannot take the half answer for a whole one.
func TestFailureAfterTheResponseStarted(t *testing.T) {
	logs := &logSink{}
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.Logger = logs.logger() }})
	st.proxy.mux.Handle("GET /test/half", st.proxy.handle("/test/half", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"partial":`)
		http.NewResponseController(w).Flush()
		return errors.New("encoder broke")
	}))

	res, err := http.Get(st.front.URL + "/test/half")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != `{"partial":` {
		t.Errorf("response = %d %q; want the 200 and the part written, nothing after it", res.StatusCode, body)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the body: err = %v; want io.ErrUnexpectedEOF (the connection cut)", err)
	}
	line := waitLog(t, logs, "ERROR", "encoder broke")
	if !strings.Contains(line, "request_id=") || !strings.Contains(line, "route=/test/half") {
		t.Errorf("error line = %q; want the request id and route", line)
	}
	if access := waitLog(t, logs, "INFO request ", "route=/test/half"); !strings.Contains(access, "status=200") {
		t.Errorf("access line = %q; want the status that was sent, 200", access)
	}
	if n := counterValue(t, st.reg, "zdgate_http_errors_total", "code", "internal_error"); n != 0 {
		t.Errorf("zdgate_http_errors_total{code=internal_error} = %v; want 0: no error answer was given", n)
	}
}

// TestClientGoneBeforeTheAnswer: a client that gives up before zdgate answers is a 499 either way;
// an error its leaving caused (the request's context ended) is logged at DEBUG only, while a real
// failure that happened meanwhile (the session store down) keeps its ERROR line.
func TestClientGoneBeforeTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, level string
		fail        func(r *http.Request) error
	}{
		{"its leaving is the error", "DEBUG client went away", func(r *http.Request) error { return r.Context().Err() }},
		{"a failure meanwhile", "ERROR request failed; its client had gone", func(*http.Request) error {
			return errUnavailable("session_store_unavailable", errors.New("redis: connection refused"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logSink{}
			st := newStack(t, stackOpts{mutate: func(c *Config) { c.Logger = logs.logger() }})
			entered := make(chan struct{})
			st.proxy.mux.Handle("GET /test/wait", st.proxy.handle("/test/wait", func(w http.ResponseWriter, r *http.Request) error {
				close(entered)
				<-r.Context().Done() // the client has hung up
				return tc.fail(r)
			}))
			conn, err := net.Dial("tcp", strings.TrimPrefix(st.front.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /test/wait HTTP/1.1\r\nHost: zdgate.test\r\n\r\n")
			<-entered
			conn.Close()
			waitLog(t, logs, tc.level, "route=/test/wait")
			if line := waitLog(t, logs, "INFO request ", "route=/test/wait"); !strings.Contains(line, "status=499") {
				t.Errorf("access line = %q; want status=499", line)
			}
			if n := counterValue(t, st.reg, "zdgate_http_errors_total", "code", "session_store_unavailable"); n != 0 {
				t.Errorf("zdgate_http_errors_total = %v; want no answer counted", n)
			}
		})
	}
}
