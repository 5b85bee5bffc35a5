package oidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
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

func TestMisconfiguredIsOurClient(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&oauth2.RetrieveError{Response: resp(401), ErrorCode: "invalid_client"}, true},
		{&oauth2.RetrieveError{Response: resp(400), ErrorCode: "unauthorized_client"}, true},
		{&oauth2.RetrieveError{Response: resp(401)}, true},
		{&oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, false},
		{&oauth2.RetrieveError{Response: resp(503)}, false},
		{fmt.Errorf("dial: %w", ErrFailingFast), false},
		{&StatusError{StatusCode: 401}, false}, // userinfo 401 is the user's token
	} {
		err := classify("refresh", c.err)
		if IsMisconfigured(err) != c.want {
			t.Errorf("IsMisconfigured(classify(%v)) = %v; want %v", c.err, !c.want, c.want)
		}
		if c.want && (KindOf(err) != Unavailable || !strings.Contains(err.Error(), "misconfigured")) {
			t.Errorf("classify(%v) = %v (%v); want Unavailable, saying misconfigured", c.err, err, KindOf(err))
		}
	}
	if KindOf(classify("x", fmt.Errorf("wrapped: %w", ErrFailingFast))) != Unavailable {
		t.Error("ErrFailingFast is not Unavailable")
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
