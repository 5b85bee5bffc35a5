package oidctest

import (
	"crypto/subtle"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// authRequest is a checked authorization request.
type authRequest struct {
	client                                                 Client
	redirectURI, scope, state, nonce, challenge, loginHint string
}

// parseAuthRequest checks an authorization request. Every problem is shown to the browser as plain
// text and never redirected, so an unregistered redirect_uri never receives anything.
func (s *Server) parseAuthRequest(q url.Values) (*authRequest, string) {
	c, ok := s.client(q.Get("client_id"))
	if !ok {
		return nil, "unknown client_id"
	}
	req := &authRequest{
		client:      c,
		redirectURI: q.Get("redirect_uri"),
		scope:       q.Get("scope"),
		state:       q.Get("state"),
		nonce:       q.Get("nonce"),
		challenge:   q.Get("code_challenge"),
		loginHint:   q.Get("login_hint"),
	}
	switch {
	case req.redirectURI == "":
		return nil, "redirect_uri is required"
	case !redirectAllowed(c.RedirectURIs, req.redirectURI, "http"):
		return nil, "redirect_uri is not registered for this client"
	case q.Get("response_type") != "code":
		return nil, "response_type must be code"
	case !hasScope(req.scope, "openid"):
		return nil, "scope must include openid"
	case req.challenge == "":
		return nil, "code_challenge is required (PKCE)"
	case q.Get("code_challenge_method") != "S256":
		return nil, "code_challenge_method must be S256"
	case len(req.challenge) != 43 || !validPKCE(req.challenge):
		return nil, "code_challenge is not an S256 challenge"
	}
	return req, ""
}

// redirectAllowed: exact match against registered, or, when nothing is registered, a loopback URL
// with one of schemes.
func redirectAllowed(registered []string, raw string, schemes ...string) bool {
	if len(registered) > 0 {
		return slices.Contains(registered, raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.authorize(w, r, r.URL.Query())
}

// handleLogin takes the login form's POST, or, without LoginForm, an authorization request sent as
// a form (OIDC Core §3.1.2.1 allows POST).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "oidctest: cannot parse form", http.StatusBadRequest)
		return
	}
	if !s.opts.LoginForm {
		s.authorize(w, r, r.PostForm)
		return
	}
	req, problem := s.parseAuthRequest(r.PostForm)
	if problem != "" {
		http.Error(w, "oidctest: "+problem, http.StatusBadRequest)
		return
	}
	cookie, err := r.Cookie(csrfCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		http.Error(w, "oidctest: the login form expired or cookies are off; start the login again", http.StatusBadRequest)
		return
	}
	name := r.PostForm.Get("username")
	s.mu.Lock()
	u, ok := s.findUserLocked(name)
	s.mu.Unlock()
	if !ok || u.Password == "" || subtle.ConstantTimeCompare([]byte(u.Password), []byte(r.PostForm.Get("password"))) != 1 {
		s.showLogin(w, req, cookie.Value, name, "Wrong username or password.", http.StatusUnauthorized)
		return
	}
	s.redirectWithCode(w, r, req, u)
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, q url.Values) {
	req, problem := s.parseAuthRequest(q)
	if problem != "" {
		http.Error(w, "oidctest: "+problem, http.StatusBadRequest)
		return
	}
	if s.opts.LoginForm {
		csrf := randomToken()
		http.SetCookie(w, &http.Cookie{
			Name: csrfCookie, Value: csrf, Path: PathAuthorize, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
		s.showLogin(w, req, csrf, req.loginHint, "", http.StatusOK)
		return
	}
	s.mu.Lock()
	var u User
	var ok bool
	if req.loginHint != "" {
		u, ok = s.findUserLocked(req.loginHint)
	} else if len(s.users) > 0 {
		u, ok = cloneUser(s.users[0]), true
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "oidctest: no user for login_hint "+strconv.Quote(req.loginHint), http.StatusBadRequest)
		return
	}
	s.redirectWithCode(w, r, req, u)
}

// findUserLocked finds the user a person typed: subject, preferred username or email.
func (s *Server) findUserLocked(name string) (User, bool) {
	if name == "" {
		return User{}, false
	}
	for _, u := range s.users {
		if u.Subject == name || (u.PreferredUsername != "" && u.PreferredUsername == name) ||
			(u.Email != "" && strings.EqualFold(u.Email, name)) {
			return cloneUser(u), true
		}
	}
	return User{}, false
}

// redirectWithCode starts a new IdP session for u and sends the browser back with a fresh code.
func (s *Server) redirectWithCode(w http.ResponseWriter, r *http.Request, req *authRequest, u User) {
	now := s.now()
	code := randomToken()
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID: req.client.ID, redirectURI: req.redirectURI, challenge: req.challenge, nonce: req.nonce,
		sub: u.Subject, scope: req.scope, sid: s.newSessionLocked(u.Subject),
		authTime: now, expires: now.Add(codeTTL),
	}
	s.mu.Unlock()
	target, _ := url.Parse(req.redirectURI) // parsed before in redirectAllowed or registered verbatim
	q := target.Query()
	q.Set("code", code)
	if req.state != "" {
		q.Set("state", req.state)
	}
	target.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target.String(), http.StatusFound)
}

const csrfCookie = "oidctest_csrf"

type hiddenField struct{ Name, Value string }

func (s *Server) showLogin(w http.ResponseWriter, req *authRequest, csrf, username, problem string, status int) {
	data := struct {
		ClientID, Action, Username, Error string
		Hidden                            []hiddenField
	}{
		ClientID: req.client.ID, Action: PathAuthorize, Username: username, Error: problem,
		Hidden: []hiddenField{
			{"client_id", req.client.ID}, {"redirect_uri", req.redirectURI}, {"response_type", "code"},
			{"scope", req.scope}, {"state", req.state}, {"nonce", req.nonce},
			{"code_challenge", req.challenge}, {"code_challenge_method", "S256"}, {"csrf", csrf},
		},
	}
	writeHTML(w, status, loginPage, data)
}

func writeHTML(w http.ResponseWriter, status int, t *template.Template, data any) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "oidctest: cannot render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

const pageStyle = `<style>
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
font:16px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f3f4f6;color:#111827}
main{background:#fff;padding:2rem 2.25rem;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.08);width:20rem}
h1{font-size:1.25rem;margin:0 0 .25rem}
.sub{margin:0 0 1.25rem;color:#4b5563;font-size:.9rem}
label{display:block;font-size:.85rem;font-weight:600;margin:.75rem 0 .25rem}
input{box-sizing:border-box;width:100%;padding:.55rem .65rem;border:1px solid #d1d5db;border-radius:6px;font:inherit}
button{margin-top:1.25rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#1f73b7;color:#fff;font:inherit;font-weight:600;cursor:pointer}
#error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;border-radius:6px;padding:.5rem .65rem;font-size:.9rem}
.note{margin:1.25rem 0 0;color:#6b7280;font-size:.75rem}
a{color:#1f73b7}
</style>`

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · zdgate dev IdP</title>
` + pageStyle + `
</head>
<body>
<main>
<h1>zdgate dev IdP</h1>
<p class="sub">Sign in to continue to <strong>{{.ClientID}}</strong></p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<label for="username">Username or email</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login" type="submit">Sign in</button>
</form>
<p class="note">A development identity provider for local testing only.</p>
</main>
</body>
</html>
`))
