// Package redistest runs a real redis-server for tests, so that the Redis session store is tested
// against the server it meets in production (expiry, Lua, reconnects, failover) rather than a fake.
// Each Start gets its own process on a free loopback port, without persistence, in a temporary
// directory; Stop and Restart simulate an outage. StartSentinel runs a primary, a replica and three
// redis-sentinel processes; StartCluster runs a Redis Cluster made by `redis-cli --cluster create`.
//
// redis-server, redis-sentinel and redis-cli come from Debian (scripts/setup-test-deps.sh installs
// them). Without them, the launchers skip the test — or fail it under ZDGATE_E2E=required.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/e2e"
)

const (
	howToInstall = "run make test-deps (installs Debian's redis-server, redis-sentinel and redis-tools)"
	readyTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	probeTimeout = 500 * time.Millisecond
	startTries   = 3 // a free port can be taken by someone else before redis-server binds it
)

// Server is one running (or stopped) redis-server. Its methods other than URL and Addr must be
// called from the test's goroutine, since they may end the test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// argv is the command line after bin; nil runs a plain redis-server (serverArgs).
	argv func(s *Server) []string
	logs logBuffer

	mu   sync.Mutex
	proc *process // nil while stopped
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// Start runs redis-server on 127.0.0.1 and a free port, with no RDB snapshots, no append-only
// file and t.TempDir() as its directory, and waits (bounded) until it answers PING. The server
// is killed when the test ends; its log is printed if the test failed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := e2e.LookPath(t, howToInstall, "redis-server")
	s, err := launch(t, bin, "redis-server", nil, nil)
	if err != nil {
		t.Fatalf("redistest.Start: %v", err)
	}
	return s
}

// launch starts a process of bin on a free port (trying again when the port is taken meanwhile)
// and registers its cleanup. prepare, if set, runs before each try, once the port is chosen (a
// cluster node's bus port, a sentinel's configuration file); its error ends the tries.
func launch(t testing.TB, bin, name string, argv func(*Server) []string, prepare func(*Server) error) (*Server, error) {
	t.Helper()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), argv: argv}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("%s on port %d, log:\n%s", name, s.port, s.logs.String())
		}
	})
	var err error
	for range startTries {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if prepare != nil {
			if err = prepare(s); err != nil {
				return nil, err
			}
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// URL is the server's address as a redis:// URL for database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Running reports whether the process was started and not stopped since.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Stop kills the server (SIGKILL, as in a crash) and waits for it to exit; the port stays the
// server's, so Restart brings it back at the same address. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		s.t.Errorf("redistest: %s (pid %d) did not exit within %v", s.bin, p.cmd.Process.Pid, stopTimeout)
	}
}

// Restart stops the server if it runs and starts a fresh process on the same port, waiting
// (bounded) until it answers. Nothing survives a restart: there is no persistence.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// serverArgs is a redis-server's command line: loopback, this port, no persistence, logging to
// stdout, then extra.
func serverArgs(s *Server, extra ...string) []string {
	return append([]string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--save", "",
		"--appendonly", "no",
		// A replica's first sync starts at once, not after Redis' default 5s wait for more
		// replicas: a replica that never synced cannot take over.
		"--repl-diskless-sync-delay", "0",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "", // to stdout, which goes to the log buffer
	}, extra...)
}

func (s *Server) start() error {
	args := serverArgs(s)
	if s.argv != nil {
		args = s.argv(s)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = &s.logs
	cmd.Stderr = &s.logs
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		err := probe(s.Addr(), cmd.Process.Pid)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			return fmt.Errorf("%s on port %d exited before it was ready: %v", s.bin, s.port, p.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("%s on port %d not ready within %v: %v", s.bin, s.port, readyTimeout, err)
		}
	}
}

// probe sends PING, then checks with INFO that the server on addr is the process we started and
// not someone else's that took the port first.
func probe(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	line, err = br.ReadString('\n')
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 || n > 1<<20 {
		return fmt.Errorf("INFO answered %q", strings.TrimSpace(line))
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(br, info); err != nil {
		return err
	}
	if !bytes.Contains(info, []byte("\nprocess_id:"+strconv.Itoa(pid)+"\r\n")) {
		return errors.New("another redis-server answers on this port")
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logBuffer collects the output of every process of a Server.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
