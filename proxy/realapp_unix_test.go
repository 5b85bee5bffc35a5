//go:build unix

package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/e2e"
)

// Real app servers behind zdgate, for attacks whose outcome depends on how the app reads what
// zdgate forwards: Hypercorn (h2c upgrades) and Tomcat (";" path parameters). Each runs in its own
// process group on loopback, and is stopped by that group when the test ends.

const (
	appReadyTimeout = 60 * time.Second // javac + JVM start on two loaded cores
	appStopTimeout  = 10 * time.Second
	howToInstallApp = "run scripts/setup-test-deps.sh (Debian: apt-get install python3-hypercorn libtomcat10-java default-jdk-headless)"
)

// appLog keeps a child's output for the test log, bounded.
type appLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *appLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 256<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *appLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// runChild starts cmd in its own process group and stops that group when t ends (stdin closed
// first, then SIGTERM, then SIGKILL).
func runChild(t *testing.T, cmd *exec.Cmd, logs *appLog) io.WriteCloser {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Stderr == nil {
		cmd.Stderr = logs
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close()
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(appStopTimeout):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), logs)
		}
	})
	return stdin
}

// startHypercorn serves testdata/hypercorn/app.py on a loopback listener that the test opens and
// hands over (fd://3), so there is no port to race for. It returns the app's base URL and a
// function reading the requests the app served.
func startHypercorn(t *testing.T) (string, func() []appRequest) {
	t.Helper()
	bin := e2e.LookPath(t, howToInstallApp, "/usr/bin/hypercorn", "hypercorn")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // the child keeps its own copy of the socket
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir, _ := filepath.Abs("testdata/hypercorn")
	logPath := filepath.Join(t.TempDir(), "requests.jsonl")
	cmd := exec.Command(bin, "--bind", "fd://3", "--workers", "1", "--log-level", "warning", "app:app")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "APP_LOG="+logPath)
	cmd.ExtraFiles = []*os.File{f}
	logs := &appLog{}
	cmd.Stdout = logs
	runChild(t, cmd, logs)
	addr := ln.Addr().String()
	deadline := time.Now().Add(appReadyTimeout)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			// The socket accepts before Hypercorn serves; ask once for a real answer.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET /ready HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "HTTP/1.1 200") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hypercorn not ready within %v:\n%s", appReadyTimeout, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(logPath) // forget the readiness probe
	return "http://" + addr, func() []appRequest { return readAppLog(t, logPath) }
}

// appRequest is one request the Hypercorn app served.
type appRequest struct {
	Path        string `json:"path"`
	HTTPVersion string `json:"http_version"`
	User        string `json:"user"`
}

func readAppLog(t *testing.T, path string) []appRequest {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []appRequest
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r appRequest
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("app log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// startTomcat compiles testdata/tomcat/PathParamApp.java against Debian's Tomcat 10 jars into a
// temporary directory, runs it, and returns its base URL.
func startTomcat(t *testing.T) string {
	t.Helper()
	java := e2e.LookPath(t, howToInstallApp, "java")
	javac := e2e.LookPath(t, howToInstallApp, "javac")
	var jars []string
	for _, name := range []string{"catalina", "coyote", "util", "util-scan", "juli", "api", "servlet-api", "jni", "jaspic-api", "annotations-api"} {
		p := "/usr/share/java/tomcat10-" + name + ".jar"
		if _, err := os.Stat(p); err != nil {
			e2e.Missing(t, "Tomcat 10 ("+p+")", howToInstallApp)
		}
		jars = append(jars, p)
	}
	cp := strings.Join(jars, ":")
	dir := t.TempDir()
	src, _ := filepath.Abs("testdata/tomcat/PathParamApp.java")
	if out, err := exec.Command(javac, "-nowarn", "-d", dir, "-cp", cp, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	cmd := exec.Command(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", dir+":"+cp, "PathParamApp", filepath.Join(dir, "base"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &appLog{}
	runChild(t, cmd, logs)
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r struct{ Port int }
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Port > 0 {
				ready <- r.Port
			}
			logs.Write(append(sc.Bytes(), '\n'))
		}
	}()
	select {
	case port := <-ready:
		return "http://127.0.0.1:" + strconv.Itoa(port)
	case <-time.After(appReadyTimeout):
		t.Fatalf("tomcat not ready within %v:\n%s", appReadyTimeout, logs)
		return ""
	}
}

// dialBase opens a raw connection to an http:// base URL, bounded to 15 s in all.
func dialBase(t *testing.T, base string) (net.Conn, string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return c, addr
}

// rawGet sends one request with the target written exactly as given (no client-side cleaning or
// escaping) and returns the status code and body.
func rawGet(t *testing.T, base, target string, headers map[string]string) (int, string) {
	t.Helper()
	c, addr := dialBase(t, base)
	defer c.Close()
	var req strings.Builder
	req.WriteString("GET " + target + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n")
	for k, v := range headers {
		req.WriteString(k + ": " + v + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
