package oidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"golang.org/x/oauth2"
)

func TestClassifyByTypeNotText(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	cases := []struct {
		name string
		err  error
		want Kind
	}{
		{"invalid_grant", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, Revoked},
		{"invalid_client is ours, not the user's", &oauth2.RetrieveError{Response: resp(401), ErrorCode: "invalid_client"}, Unavailable},
		{"token endpoint 503", &oauth2.RetrieveError{Response: resp(503)}, Unavailable},
		{"userinfo 401", &StatusError{StatusCode: 401}, Revoked},
		{"userinfo 403", &StatusError{StatusCode: 403}, Revoked},
		{"userinfo 500", &StatusError{StatusCode: 500}, Unavailable},
		{"timeout", fmt.Errorf("call: %w", context.DeadlineExceeded), Unavailable},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, Unavailable},
		// Text that looks like a revocation must not count as one.
		{"text says invalid_grant", errors.New("oauth2: invalid_grant 401 unauthorized"), Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := classify("step", c.err)
			if got := KindOf(err); got != c.want {
				t.Fatalf("KindOf(classify(%v)) = %v; want %v", c.err, got, c.want)
			}
			if !errors.Is(err, c.err) {
				t.Fatal("classify lost the cause")
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New(empty) = nil error")
	}
	if _, err := New(Config{Issuer: "ftp://x", ClientID: "a", RedirectURL: "https://x/cb"}); err == nil {
		t.Fatal("New(ftp issuer) = nil error")
	}
	c, err := New(Config{Issuer: "https://idp.example.com", ClientID: "a", RedirectURL: "https://x/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Ready() {
		t.Fatal("Ready() before Discover")
	}
	if _, _, err := c.Recheck(context.Background(), Tokens{AccessToken: "x"}, "s"); KindOf(err) != Unavailable {
		t.Fatalf("Recheck before discovery = %v; want Unavailable", err)
	}
}
