package proxy

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"time"
)

// The widget events the loader reports to POST /zendesk/events, each with the reasons counted
// under their own name in zdgate_widget_events_total{flavor,event,reason}. Everything else is
// counted as "other", so a browser cannot grow the metric's cardinality.
var widgetEventReasons = map[string][]string{
	// loginCallback got Zendesk's LoginFailedError. Zendesk documents its type and a free-text
	// reason but no list of reasons, so this list is zdgate's: error codes of Sunshine
	// Conversations (which Messaging runs on), such as invalid_auth and conflict, plus expired,
	// network and "unknown" for an error without a reason. The WARN line carries any other.
	"login_failed": {"invalid_auth", "unauthorized", "forbidden", "conflict", "expired", "bad_request", "not_found", "network", "unknown"},
	// The token route refused or failed (not a plain 401 "signed out"): its error code, "claim"
	// for any claim_<name>, or what the loader saw.
	"token_failed": {"email_not_verified", "claim", "claims_rejected", "access_denied", "idp_unavailable",
		"session_store_unavailable", "cross_site_request", "flavor_not_allowed", "not_found", "internal_error", "http_error", "network", "bad_response"},
	// window.zE had not appeared after the loader's report delay (it keeps waiting).
	"widget_missing": {"timeout"},
}

// WidgetFlavors are the flavor label values of zdgate_widget_events_total.
var widgetFlavors = []string{"messaging", "chat"}

const (
	maxEventBody = 2 << 10 // a report is a few short strings
	// Each client IP may report eventBurst events at once and one every eventEvery after that.
	eventEvery  = 6 * time.Second
	eventBurst  = 10
	maxLimiters = 10_000 // client addresses remembered, by each limiter
)

// widgetEvent is the JSON body of a report. Unknown fields are ignored.
type widgetEvent struct {
	Flavor string `json:"flavor"`
	Event  string `json:"event"`
	Reason string `json:"reason"`
	Type   string `json:"type"` // LoginFailedError's type, for the log line
}

// events takes the loader's failure reports: same-origin JSON only, no cookie needed, bounded in
// size and rate per client IP. Each accepted report is one counter increment and one WARN line.
func (p *Proxy) events(w http.ResponseWriter, r *http.Request) error {
	if err := p.sameOrigin(r); err != nil {
		return err
	}
	// A cross-site form cannot send application/json, and a cross-site fetch that does needs a
	// CORS preflight, which zdgate never answers.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &httpError{status: http.StatusUnsupportedMediaType, code: "json_expected"}
	}
	client := p.trust.clientIP(r)
	if !p.eventLimits.allow(client, p.cfg.Now()) {
		return &httpError{status: http.StatusTooManyRequests, code: "rate_limited"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxEventBody)
	var ev widgetEvent
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&ev); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: "too_large"}
		}
		return errBadRequest("bad_event", err)
	}
	flavor, event, reason := labelEvent(ev)
	p.m.widgetEvents.WithLabelValues(flavor, event, reason).Inc()
	attrs := []slog.Attr{slog.String("flavor", flavor), slog.String("event", event), slog.String("reason", reason),
		slog.String("client", client)}
	if info := infoOf(r); info != nil {
		attrs = append(attrs, slog.String("request_id", info.id))
	}
	if reason == "other" && ev.Reason != "" {
		attrs = append(attrs, slog.String("reported_reason", sanitizeLabel(ev.Reason)))
	}
	if ev.Type != "" {
		attrs = append(attrs, slog.String("error_type", sanitizeLabel(ev.Type)))
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "widget event", attrs...)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// labelEvent maps a report onto the fixed label values.
func labelEvent(ev widgetEvent) (flavor, event, reason string) {
	flavor, event, reason = "other", "other", "other"
	if slices.Contains(widgetFlavors, ev.Flavor) {
		flavor = ev.Flavor
	}
	if reasons, ok := widgetEventReasons[ev.Event]; ok {
		event = ev.Event
		if slices.Contains(reasons, ev.Reason) {
			reason = ev.Reason
		}
	}
	return flavor, event, reason
}

// sanitizeLabel keeps a reported string short and printable for the log: letters, digits and
// _-.: only, at most 64 of them. It is never used as a metric label.
func sanitizeLabel(s string) string {
	b := make([]byte, 0, min(len(s), 64))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' {
			b = append(b, c)
		}
	}
	return string(b)
}
