package oidctest

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// formFields reads the hidden fields of the login page, as a browser would submit them.
func formFields(t *testing.T, page string) url.Values {
	t.Helper()
	f := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	if f.Get("csrf") == "" || f.Get("code_challenge") == "" {
		t.Fatalf("login page lacks hidden fields: %v", f)
	}
	return f
}

func TestLoginForm(t *testing.T) {
	s := NewT(t, Options{LoginForm: true, Users: []User{
		{Subject: "u-1", PreferredUsername: "alice", Password: "password"},
		{Subject: "u-7", PreferredUsername: "bob", Email: "bob@example.com", EmailVerified: true, Password: "hunter2"},
	}})
	got := make(chan url.Values, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = io.WriteString(w, "logged in")
	}))
	t.Cleanup(app.Close)

	p := newRP(t, s)
	p.conf.RedirectURL = app.URL + "/callback"
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	v := oauth2.GenerateVerifier()
	authURL := p.conf.AuthCodeURL("st-9", oauth2.S256ChallengeOption(v), gooidc.Nonce("n-9"))

	get := func() string {
		t.Helper()
		resp, err := browser.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET authorize = %d %q; want 200 HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return string(body)
	}
	post := func(c *http.Client, f url.Values, user, pass string) (*http.Response, string) {
		t.Helper()
		f.Set("username", user)
		f.Set("password", pass)
		resp, err := c.PostForm(s.URL()+PathAuthorize, f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	page := get()
	for _, want := range []string{"zdgate dev IdP", `<label for="username">`, `id="username"`, `<label for="password">`, `id="password"`, `type="password"`, `id="login"`, `method="post"`} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	fields := formFields(t, page)

	resp, body := post(browser, fields, "bob", "wrong")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `id="error"`) || !strings.Contains(body, `id="password"`) {
		t.Fatalf("wrong password = %d; want the form again with an error", resp.StatusCode)
	}
	if len(got) != 0 {
		t.Fatalf("wrong password reached the app")
	}

	if resp, _ := post(&http.Client{Timeout: 10 * time.Second}, fields, "bob", "hunter2"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST without the form's cookie = %d; want 400", resp.StatusCode)
	}

	resp, body = post(browser, formFields(t, body), "bob", "hunter2")
	if resp.StatusCode != http.StatusOK || body != "logged in" {
		t.Fatalf("login = %d %q; want to land at the app", resp.StatusCode, body)
	}
	q := <-got
	if q.Get("state") != "st-9" {
		t.Errorf("state = %q; want st-9", q.Get("state"))
	}
	tok, err := p.conf.Exchange(p.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	idt := p.verify(t, tok)
	if idt.Subject != "u-7" || idt.Nonce != "n-9" {
		t.Errorf("ID token sub/nonce = %q/%q; want u-7/n-9", idt.Subject, idt.Nonce)
	}

	// Email works as the username too.
	if resp, _ := post(browser, formFields(t, get()), "bob@example.com", "hunter2"); resp.StatusCode != http.StatusOK {
		t.Errorf("login by email = %d; want 200", resp.StatusCode)
	}
	<-got
}
