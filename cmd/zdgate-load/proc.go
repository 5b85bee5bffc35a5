package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process (zdgate, redis-server, the bare proxy) that the harness owns: its output
// is kept (the last few KiB) to explain a failure, and stop ends it for sure.
type proc struct {
	name  string
	cmd   *exec.Cmd
	out   *tail
	done  chan struct{}
	err   error     // set before done closes
	stdin io.Closer // held open; the bare-proxy child exits when it closes
}

func startProc(name, path string, args, env []string) (*proc, error) {
	p := &proc{name: name, out: &tail{max: 8 << 10}, done: make(chan struct{})}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = childAttr()
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.cmd, p.stdin = cmd, w
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks politely (SIGTERM), then kills after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.cmd == nil {
		return
	}
	p.stdin.Close()
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// why describes a process that failed to come up: its exit status and last output lines.
func (p *proc) why() string {
	var b strings.Builder
	if p.exited() {
		fmt.Fprintf(&b, "%s exited (%v)", p.name, p.err)
	} else {
		fmt.Fprintf(&b, "%s is running", p.name)
	}
	if out := strings.TrimSpace(p.out.String()); out != "" {
		lines := strings.Split(out, "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		b.WriteString("; its last output:\n    " + strings.Join(lines, "\n    "))
	}
	return b.String()
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freeAddr returns a loopback address whose port was free a moment ago, for flags that need the
// address before the process starts (--listen goes into --public-url; --metrics-listen is scraped).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, the process dies, or ctx ends.
func waitHTTP(ctx context.Context, p *proc, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				c.CloseIdleConnections()
				return nil
			}
		}
		if p != nil && p.exited() {
			return errors.New(p.why())
		}
		select {
		case <-ctx.Done():
			if p != nil {
				return fmt.Errorf("%s not ready at %s within %v: %s", p.name, url, within, p.why())
			}
			return fmt.Errorf("%s not ready within %v", url, within)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rssBytes is VmRSS of pid from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports (it is fixed in the ABI).
const clockTicks = 100

// cpuTime is the user+system CPU time pid has used, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// scrapeMetric reads one unlabelled sample (e.g. go_goroutines) from a Prometheus text endpoint.
func scrapeMetric(ctx context.Context, metricsURL, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", metricsURL, res.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(res.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", metricsURL, name)
}

// cpuSnap is the machine's busy CPU time and the part of it used by this test's own processes.
type cpuSnap struct {
	at         time.Time
	busy, ours time.Duration
	ok         bool
}

// takeCPU reads /proc/stat (all CPUs: user, nice, system, irq, softirq, steal) and the CPU time of
// pids, so that the time other processes (or the hypervisor) took can be told apart.
func takeCPU(pids []int) cpuSnap {
	s := cpuSnap{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system [idle iowait] irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return s
		}
		ticks += n
	}
	s.busy = time.Duration(ticks) * time.Second / clockTicks
	for _, pid := range pids {
		c, err := cpuTime(pid)
		if err != nil {
			return s
		}
		s.ours += c
	}
	s.ok = true
	return s
}

// otherCPU is the CPU time that processes outside the test used between a and b, and the CPU
// capacity of that interval.
func otherCPU(a, b cpuSnap, ncpu int) (other, capacity time.Duration, ok bool) {
	if !a.ok || !b.ok {
		return 0, 0, false
	}
	other = max((b.busy-a.busy)-(b.ours-a.ours), 0)
	return other, b.at.Sub(a.at) * time.Duration(ncpu), true
}
