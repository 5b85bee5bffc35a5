package oidctest

import "log/slog"

// LogValue keeps the client secret out of logs, e.g. when `zdgate demo` logs its configuration.
func (c Client) LogValue() slog.Value {
	secret := ""
	if c.Secret != "" {
		secret = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("secret", secret),
		slog.Any("redirect_uris", c.RedirectURIs),
		slog.Any("post_logout_redirect_uris", c.PostLogoutRedirectURIs),
		slog.String("backchannel_logout_uri", c.BackchannelLogoutURI),
	)
}

// LogValue keeps the password out of logs.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("sub", u.Subject),
		slog.String("email", u.Email),
		slog.String("preferred_username", u.PreferredUsername),
		slog.Bool("has_password", u.Password != ""),
	)
}
