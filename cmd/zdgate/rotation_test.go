package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// k8sSecretDir writes files the way a Kubernetes Secret volume does: the visible file is a symlink
// through ..data, which is swapped atomically on update.
type k8sSecretDir struct {
	t   *testing.T
	dir string
	gen int
}

func (k *k8sSecretDir) write(name, content string) string {
	k.gen++
	gen := filepath.Join(k.dir, "..gen"+string(rune('a'+k.gen)))
	os.MkdirAll(gen, 0o700)
	os.WriteFile(filepath.Join(gen, name), []byte(content), 0o600)
	tmp := filepath.Join(k.dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	link := filepath.Join(k.dir, name)
	if _, err := os.Lstat(link); err != nil {
		os.Symlink(filepath.Join("..data", name), link)
	}
	return link
}

func TestMessagingKeyRotationWithoutRestart(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	ln := listenLoopback(t)
	public := "http://" + ln.Addr().String()
	app := listenLoopback(t)
	go http.Serve(app, http.NotFoundHandler())
	secrets := &k8sSecretDir{t: t, dir: t.TempDir()}
	file := secrets.write("messaging", "app_old:old-secret\n")

	cfg := &Config{}
	if _, err := cfg.options().parse([]string{"--upstream=http://" + app.Addr().String(), "--public-url=" + public,
		"--oidc-issuer=" + idp.URL(), "--oidc-client-id=zdgate", "--oidc-client-secret=zdgate-secret",
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false", "--metrics-listen=127.0.0.1:0",
		"--zendesk-messaging-secret-file=" + file}, envOf(nil)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := wire(cfg, discardLogger(), &hooks{secretPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a.ln = ln
	runApp(t, a, public)

	c := noFollow()
	res, err := c.Get(public + "/oauth2/start?rd=/")
	if err != nil {
		t.Fatal(err)
	}
	res, _ = c.Get(res.Header.Get("Location"))
	res, _ = c.Get(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", res.StatusCode)
	}

	mint := func() (string, int) {
		res, err := c.Get(public + "/zendesk/token")
		if err != nil {
			t.Error(err)
			return "", 0
		}
		defer res.Body.Close()
		var body struct{ JWT string }
		json.NewDecoder(res.Body).Decode(&body)
		return body.JWT, res.StatusCode
	}
	valid := func(jwt, kid, secret string) bool {
		return tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(secret), KeyID: kid}).Valid()
	}
	if jwt, _ := mint(); !valid(jwt, "app_old", "old-secret") {
		t.Fatal("first token not signed with the old key")
	}
	var failures atomic.Int64
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() { // traffic during the swap
		defer close(loopDone)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			jwt, code := mint()
			if code != 200 || !(valid(jwt, "app_old", "old-secret") || valid(jwt, "app_new", "new-secret")) {
				failures.Add(1)
			}
		}
	}()
	secrets.write("messaging", "") // a half-written file first: ignored (logged, counted), the old key stays
	metrics := "http://" + a.metricsLn.Addr().String() + "/metrics"
	badSeen := `zdgate_secret_reloads_total{result="error",secret="zendesk-messaging-secret"} 1`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, text := newBrowserless(t).get(metrics); strings.Contains(text, badSeen) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bad secret file was never noticed")
		}
	}
	if jwt, _ := mint(); !valid(jwt, "app_old", "old-secret") {
		t.Fatal("after a bad file the old key must stay")
	}
	secrets.write("messaging", "app_new:new-secret\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if jwt, _ := mint(); valid(jwt, "app_new", "new-secret") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new key never took effect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-loopDone
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d token requests failed or were signed with neither key during the rotation", n)
	}
	_, text := newBrowserless(t).get(metrics)
	for _, want := range []string{badSeen, `zdgate_secret_reloads_total{result="ok",secret="zendesk-messaging-secret"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
