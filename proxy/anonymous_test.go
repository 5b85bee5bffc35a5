package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestOnlyPageLoadsRedirectToLogin pins what the README promises under "Who gets sent to the login
// page": a browser page load (GET asking for HTML, or a navigation) is redirected to the IdP's
// login, as /oauth2/start would; everything else without a session gets 401 and never a redirect.
func TestOnlyPageLoadsRedirectToLogin(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.noUpstream()
	tests := []struct {
		name, method string
		hdr          map[string]string
		status       int
		jsonBody     bool
	}{
		{"page load", "GET", map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, http.StatusFound, false},
		{"navigation", "GET", map[string]string{"Sec-Fetch-Mode": "navigate"}, http.StatusFound, false},
		{"fetch", "GET", map[string]string{"Accept": "application/json"}, http.StatusUnauthorized, true},
		{"curl", "GET", map[string]string{"Accept": "*/*"}, http.StatusUnauthorized, true},
		{"no accept", "GET", nil, http.StatusUnauthorized, true},
		{"post from a script", "POST", map[string]string{"Accept": "application/json"}, http.StatusUnauthorized, true},
		{"post from a form", "POST", map[string]string{"Accept": "text/html"}, http.StatusUnauthorized, false},
		{"head", "HEAD", map[string]string{"Accept": "text/html"}, http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := st.do(newClient(), tt.method, "/app/page?x=1", tt.hdr)
			if res.StatusCode != tt.status {
				t.Fatalf("%s /app/page = %d; want %d", tt.method, res.StatusCode, tt.status)
			}
			loc := res.Header.Get("Location")
			if tt.status == http.StatusFound {
				if !strings.HasPrefix(loc, st.idp.URL()+"/authorize?") {
					t.Errorf("Location = %q; want the IdP's authorize endpoint", loc)
				}
				if sc := res.Header.Get("Set-Cookie"); !strings.Contains(sc, "_login_") {
					t.Errorf("Set-Cookie = %q; want the login-state cookie that keeps rd", sc)
				}
				return
			}
			if loc != "" {
				t.Errorf("a 401 carries Location %q; want none", loc)
			}
			if tt.jsonBody {
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q; want application/json", ct)
				}
				if got := jsonBody(t, body)["error"]; got != "unauthenticated" {
					t.Errorf("error = %v; want unauthenticated", got)
				}
			}
		})
	}
}
