package inject

import (
	"bufio"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// PrepareRequest adjusts the outbound request of a page candidate (a GET
// without Upgrade that accepts text/html or is a document navigation); call
// it from ReverseProxy.Rewrite on pr.Out. It
//   - narrows Accept-Encoding to gzip (or identity when the client does not
//     take gzip), since only those bodies can be injected;
//   - turns page ETags that ModifyResponse tagged back into the origin's, so
//     the origin can still answer If-None-Match with 304;
//   - drops Range when If-Range is a date or weak tag: the client may hold an
//     injected copy, and splicing origin bytes into it would corrupt the page.
func (i *Injector) PrepareRequest(out *http.Request) {
	if !isPageRequest(out) {
		return
	}
	h := out.Header
	if acceptsGzip(h.Values("Accept-Encoding")) {
		h.Set("Accept-Encoding", "gzip")
	} else {
		h.Set("Accept-Encoding", "identity")
	}
	if v := h.Values("If-None-Match"); len(v) > 0 {
		if m, ok := i.untagList(strings.Join(v, ",")); ok {
			h.Set("If-None-Match", m)
		}
	}
	if ir := h.Get("If-Range"); ir != "" && h.Get("Range") != "" {
		if weak, _, ok := parseETag(strings.TrimSpace(ir)); !ok || weak {
			h.Del("Range")
			h.Del("If-Range")
		}
	}
}

func isPageRequest(r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" {
		return false
	}
	if strings.EqualFold(r.Header.Get("Sec-Fetch-Dest"), "document") {
		return true
	}
	for _, v := range r.Header.Values("Accept") {
		if indexFold(v, "text/html") >= 0 {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (q > 0,
// directly or through "*"). No header at all is read as "identity only", to
// keep the origin's answer predictable.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil {
						f = 0
					}
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// ModifyResponse is the ReverseProxy.ModifyResponse hook. For a GET 200 HTML
// page whose encoding, charset and CSP allow it, it adjusts the headers and
// wraps the body with the streaming injector; any other response it leaves
// exactly as it is, body unread. It never returns an error.
//
// Header changes on an injected page: Content-Length goes (the length is not
// known in advance; ReverseProxy then flushes every write), a strong ETag "x"
// becomes W/"x-zd<h>" and a weak W/"x" becomes W/"x-zdw<h>" (h hashes the
// injected tags, PrepareRequest maps both back), Accept-Ranges and content
// digests go, a gzip body is decoded and sent without Content-Encoding (Vary:
// Accept-Encoding added), Cache-Control and Last-Modified stay: the injected
// bytes are the same for every user.
//
// The page's enforced Content-Security-Policy headers decide the nonce on the
// injected tags; when they would block a same-origin script, the page is
// left alone (see csp.go). Host-sources in a policy are matched against the
// outbound X-Forwarded-Host, so Rewrite should call pr.SetXForwarded.
func (i *Injector) ModifyResponse(res *http.Response) error {
	charset, ok := pageResponse(res)
	if !ok {
		return nil
	}
	if !asciiCompatible(charset) {
		i.observe(ResultCharset)
		return nil
	}
	gz := false
	switch contentEncoding(res.Header) {
	case "":
	case "gzip", "x-gzip":
		gz = true
	default:
		i.observe(ResultEncoding)
		return nil
	}
	nonce, allowed := i.checkCSP(res)
	if !allowed {
		i.observe(ResultCSPBlocked)
		return nil
	}

	h := res.Header
	length := res.ContentLength
	h.Del("Content-Length")
	res.ContentLength = -1
	h.Del("Accept-Ranges")
	h.Del("Content-MD5")
	h.Del("Digest")
	h.Del("Content-Digest")
	h.Del("Repr-Digest")
	i.tagETag(h)
	body := res.Body
	if gz {
		h.Del("Content-Encoding")
		addVary(h, "Accept-Encoding")
		body = &gzipBody{body: body}
	}
	tag, widget := i.tag, i.widget
	if nonce != "" {
		tag = i.loaderTag(nonce)
		if widget != nil {
			widget = i.widgetTag(nonce)
		}
	}
	if !gz && widget == nil && length > 0 && length <= int64(i.scanLimit) {
		body = i.fixLength(res, body, length, len(tag))
	}
	res.Body = newReader(body, tag, widget, i.scanLimit, i.observe)
	return nil
}

// fixLength declares the injected page's exact length when it is certain: a whole page no longer
// than the scan limit always gets the tag exactly once (before </head>, <body or at the end),
// unless it starts with a UTF-16 byte order mark, which the first two bytes tell. With a length,
// ReverseProxy writes the page like any other instead of flushing every read as a stream. The
// peek waits for the body's first bytes, which a server that knows its length sends at once.
func (i *Injector) fixLength(res *http.Response, body io.ReadCloser, length int64, tagLen int) io.ReadCloser {
	br := bufio.NewReaderSize(body, 16)
	first, err := br.Peek(2)
	if err != nil && err != io.EOF || len(first) == 2 && (first[0] == 0xFE && first[1] == 0xFF || first[0] == 0xFF && first[1] == 0xFE) {
		return peeked{br, body}
	}
	res.ContentLength = length + int64(tagLen)
	res.Header.Set("Content-Length", strconv.FormatInt(res.ContentLength, 10))
	return peeked{br, body}
}

// peeked reads through the peek buffer and closes the original body.
type peeked struct {
	*bufio.Reader
	io.Closer
}

// pageResponse applies the gate of docs/reference.md §5 that does not need the body (and
// skips downloads) and returns the charset parameter of a page candidate.
func pageResponse(res *http.Response) (charset string, ok bool) {
	req := res.Request
	if req == nil || req.Method != http.MethodGet || res.StatusCode != http.StatusOK {
		return "", false
	}
	if req.Header.Get("Upgrade") != "" || res.Header.Get("Content-Range") != "" || res.ContentLength == 0 || res.Body == nil {
		return "", false
	}
	if d, _, _ := strings.Cut(res.Header.Get("Content-Disposition"), ";"); strings.EqualFold(strings.TrimSpace(d), "attachment") {
		return "", false // a download, not a page: the file stays as the origin made it
	}
	typ, charset := mediaType(res.Header.Get("Content-Type"))
	return charset, typ == "text/html"
}

// mediaType returns the lower-case media type and the charset parameter of a
// Content-Type, reading malformed parameter lists leniently, as browsers do.
func mediaType(ct string) (typ, charset string) {
	if t, params, err := mime.ParseMediaType(ct); err == nil {
		return t, params["charset"]
	}
	base, rest, _ := strings.Cut(ct, ";")
	typ = strings.ToLower(strings.TrimSpace(base))
	for _, p := range strings.Split(rest, ";") {
		if k, v, ok := strings.Cut(p, "="); ok && strings.EqualFold(strings.TrimSpace(k), "charset") {
			return typ, strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return typ, ""
}

// asciiCompatible reports whether a charset label names an encoding in which
// the bytes of "</head>" can only mean those characters. It rejects the
// WHATWG labels of UTF-16 and ISO-2022-JP and of the replacement encoding,
// and UTF-32 and UTF-7 labels; anything else (UTF-8, windows-125x, Shift_JIS,
// GB18030, EUC-*, unknown labels that browsers replace) is compatible.
func asciiCompatible(label string) bool {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-16", "utf-16le", "utf-16be", "unicodefffe", "unicodefeff", "csunicode",
		"iso-10646-ucs-2", "ucs-2", "unicode",
		"utf-32", "utf-32le", "utf-32be", "ucs-4", "iso-10646-ucs-4",
		"iso-2022-jp", "csiso2022jp",
		"replacement", "csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr",
		"utf-7", "csunicode11utf7", "unicode-1-1-utf-7":
		return false
	}
	return true
}

// contentEncoding returns the single content coding of a response in lower
// case, "" for none, or "multiple" when codings are stacked.
func contentEncoding(h http.Header) string {
	enc := ""
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c == "" || c == "identity" {
				continue
			}
			if enc != "" {
				return "multiple"
			}
			enc = c
		}
	}
	return enc
}

func addVary(h http.Header, field string) {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, field) {
				return
			}
		}
	}
	h.Add("Vary", field)
}

// tagETag marks the ETag of an injected page as weak (the bytes differ from
// the origin's) and as ours (so PrepareRequest can map it back). A malformed
// or repeated ETag is dropped rather than passed on for different bytes.
func (i *Injector) tagETag(h http.Header) {
	vals := h.Values("ETag")
	if len(vals) == 0 {
		return
	}
	weak, opaque, ok := parseETag(strings.TrimSpace(vals[0]))
	if !ok || len(vals) > 1 {
		h.Del("ETag")
		return
	}
	suffix := i.etagStrong
	if weak {
		suffix = i.etagWeak
	}
	h.Set("ETag", `W/"`+opaque+suffix+`"`)
}

// parseETag splits one entity tag (RFC 9110 §8.8.3) into weakness and the
// opaque part without quotes.
func parseETag(s string) (weak bool, opaque string, ok bool) {
	if strings.HasPrefix(s, "W/") {
		weak, s = true, s[2:]
	}
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || strings.IndexByte(s[1:len(s)-1], '"') >= 0 {
		return false, "", false
	}
	return weak, s[1 : len(s)-1], true
}

// untagList rewrites an If-None-Match list, replacing every tag made by
// tagETag with the origin's. ok is false when nothing changed or the list
// does not parse (then it is left alone).
func (i *Injector) untagList(list string) (string, bool) {
	var out []string
	changed := false
	for s := list; ; {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		if s[0] == '*' {
			return "", false
		}
		weak := strings.HasPrefix(s, "W/")
		start := 0
		if weak {
			start = 2
		}
		if len(s) <= start || s[start] != '"' {
			return "", false
		}
		end := strings.IndexByte(s[start+1:], '"')
		if end < 0 {
			return "", false
		}
		tag := s[:start+end+2]
		opaque := s[start+1 : start+1+end]
		s = s[start+end+2:]
		if weak {
			if o, ok := strings.CutSuffix(opaque, i.etagStrong); ok {
				tag, changed = `"`+o+`"`, true
			} else if o, ok := strings.CutSuffix(opaque, i.etagWeak); ok {
				tag, changed = `W/"`+o+`"`, true
			}
		}
		out = append(out, tag)
	}
	if !changed {
		return "", false
	}
	return strings.Join(out, ", "), true
}
