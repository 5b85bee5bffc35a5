// Package inject adds zdgate's loader script to the HTML pages that the
// reverse proxy passes on, and serves that script.
//
// The page gets only a static tag, <script src="/zendesk/auth.js?v=…" defer>,
// never a token: the script asks the same-origin token route for a fresh
// Zendesk JWT whenever the widget needs one. The tag goes in while the page
// streams through (see NewReader), so pages are never held whole and the
// first byte is never delayed; everything that is not a plain GET 200 HTML
// page passes through untouched.
package inject

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Results passed to Config.Observe, one per candidate response (a GET that
// the origin answered 200 with a non-empty text/html body, not ranged, not an
// upgrade, not a download). The set is fixed, so it can label a metric.
const (
	ResultInjected      = "injected"        // before </head> or <body
	ResultInjectedAtEnd = "injected_at_end" // neither tag within the scan limit: at the end of the page
	ResultScanLimit     = "scan_limit"      // neither tag within the scan limit, page longer: unchanged
	ResultEncoding      = "encoding"        // Content-Encoding other than gzip/identity (br, zstd, ...): unchanged
	ResultCharset       = "charset"         // UTF-16/UTF-32 (or other non-ASCII-compatible) charset or byte order mark: unchanged
	ResultCSPBlocked    = "csp_blocked"     // the page's CSP would block the loader: unchanged
	ResultError         = "error"           // reading the upstream body failed before a decision (reset, bad gzip)
	ResultAborted       = "aborted"         // the body was closed before a decision (client went away)
)

// Results lists every value Observe can receive, so a metric can be
// initialised with all of them.
func Results() []string {
	return []string{ResultInjected, ResultInjectedAtEnd, ResultScanLimit, ResultEncoding,
		ResultCharset, ResultCSPBlocked, ResultError, ResultAborted}
}

// Flavors of the Zendesk widget that auth.js can drive (docs/reference.md --zendesk-flavor).
const (
	FlavorMessaging = "messaging" // zE('messenger','loginUser', ...)
	FlavorChat      = "chat"      // classic Web Widget, zESettings.webWidget.authenticate.chat.jwtFn
)

// Config is the injector's part of the zdgate configuration. Zero values mean
// the defaults of docs/reference.md.
type Config struct {
	// ScanLimit is how many bytes of a page are scanned for </head> or <body
	// before giving up (0: DefaultScanLimit).
	ScanLimit int
	// Flavor is the widget auth.js drives: FlavorMessaging (default) or FlavorChat.
	Flavor string
	// TokenPath is the same-origin token route auth.js fetches (default /zendesk/token).
	TokenPath string
	// ScriptPath is where ServeScript is mounted (default /zendesk/auth.js).
	ScriptPath string
	// EventsPath is where auth.js reports widget failures (default /zendesk/events).
	EventsPath string
	// SignOutPath is the sign-out route window.zdgate.logout() goes to (default /oauth2/sign_out).
	SignOutPath string
	// WidgetScriptURL, if set, is Zendesk's widget snippet (see SnippetURL),
	// injected after the loader unless the page already mentions ze-snippet
	// or zdassets.com before the insertion point.
	WidgetScriptURL string
	// Observe receives one of the Result* values per candidate response,
	// from ModifyResponse or from the body's Read or Close. Responses are
	// handled concurrently, so it must be safe for concurrent use. Nil: not
	// observed.
	Observe func(result string)
	// Logger receives one warning per distinct policy when a page's
	// Content-Security-Policy blocks the loader. Nil: no logging.
	Logger *slog.Logger
}

// maxLoggedPolicies bounds the memory spent remembering logged policies.
const maxLoggedPolicies = 128

// Injector holds what every response needs, computed once in New. It is
// safe for concurrent use.
type Injector struct {
	scanLimit  int
	scriptPath string
	widgetURL  string
	observe    func(string)
	log        *slog.Logger

	js      []byte // auth.js with its configuration
	version string
	etag    string // of auth.js
	tag     []byte // loader tag without nonce
	widget  []byte // widget tag without nonce, or nil
	// Suffixes added to the opaque part of a page's ETag when the page is
	// injected: one for a strong and one for a weak origin tag, so
	// PrepareRequest can restore either exactly.
	etagStrong, etagWeak string

	mu     sync.Mutex
	logged map[uint64]struct{} // hashes of blocking policies already logged
}

//go:embed auth.js
var authJS []byte

const (
	configStart = "/*zdgate:config*/"
	configEnd   = "/*zdgate:end*/"
)

// SnippetURL returns the URL of Zendesk's widget snippet for a widget key, for
// Config.WidgetScriptURL.
func SnippetURL(key string) string {
	return "https://static.zdassets.com/ekr/snippet.js?key=" + url.QueryEscape(key)
}

// New checks cfg and prepares the loader script and tags. Every problem is
// reported, each prefixed with the field it concerns.
func New(cfg Config) (*Injector, error) {
	var errs []error
	if cfg.ScanLimit < 0 {
		errs = append(errs, fmt.Errorf("inject: ScanLimit: %d is negative", cfg.ScanLimit))
	}
	if cfg.ScanLimit == 0 {
		cfg.ScanLimit = DefaultScanLimit
	}
	switch cfg.Flavor {
	case "":
		cfg.Flavor = FlavorMessaging
	case FlavorMessaging, FlavorChat:
	default:
		errs = append(errs, fmt.Errorf("inject: Flavor: %q is neither %q nor %q", cfg.Flavor, FlavorMessaging, FlavorChat))
	}
	if cfg.TokenPath == "" {
		cfg.TokenPath = "/zendesk/token"
	}
	if cfg.ScriptPath == "" {
		cfg.ScriptPath = "/zendesk/auth.js"
	}
	if cfg.EventsPath == "" {
		cfg.EventsPath = "/zendesk/events"
	}
	if cfg.SignOutPath == "" {
		cfg.SignOutPath = "/oauth2/sign_out"
	}
	for _, p := range []struct{ name, path string }{
		{"TokenPath", cfg.TokenPath}, {"ScriptPath", cfg.ScriptPath}, {"EventsPath", cfg.EventsPath}, {"SignOutPath", cfg.SignOutPath},
	} {
		if err := checkPath(p.path); err != nil {
			errs = append(errs, fmt.Errorf("inject: %s: %w", p.name, err))
		}
	}
	if cfg.WidgetScriptURL != "" {
		u, err := url.Parse(cfg.WidgetScriptURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("inject: WidgetScriptURL: %q is not an http(s) URL", cfg.WidgetScriptURL))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	js, version, err := renderScript(scriptConfig{Flavor: cfg.Flavor, TokenPath: cfg.TokenPath, EventsPath: cfg.EventsPath, SignOutPath: cfg.SignOutPath})
	if err != nil {
		return nil, err
	}
	i := &Injector{
		scanLimit:  cfg.ScanLimit,
		scriptPath: cfg.ScriptPath,
		widgetURL:  cfg.WidgetScriptURL,
		observe:    cfg.Observe,
		log:        cfg.Logger,
		js:         js,
		version:    version,
		etag:       `"` + version + `"`,
		logged:     make(map[uint64]struct{}),
	}
	if i.observe == nil {
		i.observe = func(string) {}
	}
	i.tag = i.loaderTag("")
	if i.widgetURL != "" {
		i.widget = i.widgetTag("")
	}
	// Whatever changes the bytes of an injected page changes the suffix.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", i.tag, i.widget, i.scanLimit))
	v := hex.EncodeToString(sum[:4])
	i.etagStrong, i.etagWeak = "-zd"+v, "-zdw"+v
	return i, nil
}

// checkPath accepts an absolute URL path of plain path characters, so it can
// go into the script's configuration and an HTML attribute unchanged.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/%!$()*+,;=:@", c) >= 0 {
			continue
		}
		return fmt.Errorf("%q has a character not allowed in a path: %q", p, c)
	}
	return nil
}

// scriptConfig is the configuration written into auth.js.
type scriptConfig struct {
	Flavor      string `json:"flavor"`
	TokenPath   string `json:"tokenPath"`
	EventsPath  string `json:"eventsPath"`
	SignOutPath string `json:"signOutPath"`
	Version     string `json:"version"`
}

// renderScript writes the configuration into auth.js. The version is a hash
// of the script with an empty version field, so it changes exactly when the
// script or its configuration does.
func renderScript(sc scriptConfig) (js []byte, version string, err error) {
	start := bytes.Index(authJS, []byte(configStart))
	end := bytes.Index(authJS, []byte(configEnd))
	if start < 0 || end < start {
		return nil, "", errors.New("inject: auth.js has no configuration markers")
	}
	render := func(version string) []byte {
		sc.Version = version
		cfg, _ := json.Marshal(sc) // cannot fail: strings only
		var b bytes.Buffer
		b.Write(authJS[:start+len(configStart)])
		b.Write(cfg)
		b.Write(authJS[end:])
		return b.Bytes()
	}
	sum := sha256.Sum256(render(""))
	version = hex.EncodeToString(sum[:8])
	return render(version), version, nil
}

// Version is the content hash of auth.js. The injected tag carries it as ?v=,
// so browsers may cache the script for good and still load a new one after
// an upgrade.
func (i *Injector) Version() string {
	return i.version
}

// Tag returns the loader tag that is injected into pages, with nonce as its
// nonce attribute when non-empty (the page's CSP nonce).
func (i *Injector) Tag(nonce string) []byte {
	if nonce == "" {
		return bytes.Clone(i.tag)
	}
	return i.loaderTag(nonce)
}

// WidgetTag returns the tag of Zendesk's widget snippet (Config.WidgetScriptURL) with nonce, or
// nil when none is configured. zdgate's own pages (the signed-out page) use it with Tag, so the
// loader can log the widget out there.
func (i *Injector) WidgetTag(nonce string) []byte {
	if i.widgetURL == "" {
		return nil
	}
	return i.widgetTag(nonce)
}

func (i *Injector) loaderTag(nonce string) []byte {
	return scriptTag("", i.scriptPath+"?v="+i.version, nonce)
}

func (i *Injector) widgetTag(nonce string) []byte {
	return scriptTag("ze-snippet", i.widgetURL, nonce)
}

// scriptTag builds an external, deferred script tag. Deferred scripts run in
// document order after parsing, so the loader (injected first) has set up
// zESettings before a widget snippet injected with it runs.
func scriptTag(id, src, nonce string) []byte {
	b := make([]byte, 0, 48+len(id)+len(src)+len(nonce))
	b = append(b, "<script"...)
	if id != "" {
		b = append(b, ` id="`...)
		b = append(b, html.EscapeString(id)...)
		b = append(b, '"')
	}
	b = append(b, ` src="`...)
	b = append(b, html.EscapeString(src)...)
	b = append(b, `" defer`...)
	if nonce != "" {
		b = append(b, ` nonce="`...)
		b = append(b, html.EscapeString(nonce)...)
		b = append(b, '"')
	}
	return append(b, "></script>"...)
}

// ServeScript serves auth.js for GET and HEAD. A request for the current
// version (?v=Version()) may be cached for a year; any other is cached
// briefly, so a page cached across an upgrade still gets a working script.
func (i *Injector) ServeScript(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", i.etag)
	if r.URL.Query().Get("v") == i.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(i.js))
}
