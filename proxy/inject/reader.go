package inject

import (
	"bytes"
	"compress/gzip"
	"io"
)

const (
	// DefaultScanLimit is how far into a page the reader looks for </head> or
	// <body before it gives up (docs/reference.md §1, --inject-scan-limit).
	DefaultScanLimit = 256 << 10

	// minScanLimit keeps the UTF-16 byte order mark check inside the limit.
	minScanLimit = 16

	// A caller buffer shorter than the snippet plus directSlack is served from
	// an internal buffer of the snippet plus smallBuf bytes.
	directSlack = 64
	smallBuf    = 512
)

// ownWidgetMarks are byte strings that show a page loads the Zendesk widget by
// itself; the reader then leaves the widget snippet out.
var ownWidgetMarks = [...][]byte{[]byte("ze-snippet"), []byte("zdassets.com")}

const maxMark = len("zdassets.com")

// reader is the streaming state machine behind NewReader. While it scans it
// reads straight into the caller's buffer, leaving room for the snippet at
// the end, so inserting needs no buffer of its own; after the decision each
// Read is the underlying Read.
type reader struct {
	src     io.ReadCloser
	snippet []byte
	widget  []byte // inserted after snippet unless the page brings its own
	reserve int    // len(snippet) + len(widget)
	limit   int
	observe func(string)

	pass     bool // decided and drained: Read is src.Read
	done     bool // decided
	err      error
	scanned  int // bytes given to the scanner
	s        scanner
	hold     [8]byte // a possible "</head" or "<body" not yet emitted
	nhold    int
	pend     []byte // output waiting in ibuf, for small caller buffers
	ibuf     []byte
	own      bool // the page mentions the widget snippet before the insertion point
	tail     [maxMark - 1]byte
	ntail    int
	reported bool
}

// NewReader wraps an HTML body so that snippet appears right before the first
// real </head> or <body tag (whichever comes first), or at the end of a page
// that has neither within scanLimit bytes; a page that runs past scanLimit
// without either, or starts with a UTF-16 byte order mark, passes unchanged.
// It never holds more than a few bytes of a possible tag, so streamed pages
// keep streaming. scanLimit <= 0 means DefaultScanLimit. Exported so the
// state machine can be tested and benchmarked without HTTP.
func NewReader(body io.ReadCloser, snippet []byte, scanLimit int) io.ReadCloser {
	return newReader(body, snippet, nil, scanLimit, nil)
}

func newReader(body io.ReadCloser, snippet, widget []byte, scanLimit int, observe func(string)) *reader {
	switch {
	case scanLimit <= 0:
		scanLimit = DefaultScanLimit
	case scanLimit < minScanLimit:
		scanLimit = minScanLimit
	}
	return &reader{
		src:     body,
		snippet: snippet,
		widget:  widget,
		reserve: len(snippet) + len(widget),
		limit:   scanLimit,
		observe: observe,
	}
}

func (r *reader) Read(p []byte) (int, error) {
	if r.pass {
		return r.src.Read(p)
	}
	return r.slowRead(p)
}

func (r *reader) slowRead(p []byte) (int, error) {
	for {
		if len(r.pend) > 0 {
			n := copy(p, r.pend)
			r.pend = r.pend[n:]
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			r.pass = true
			return r.src.Read(p)
		}
		if len(p) == 0 {
			return 0, nil
		}
		buf := p
		small := len(p) < r.reserve+directSlack
		if small {
			if r.ibuf == nil {
				r.ibuf = make([]byte, r.reserve+smallBuf)
			}
			buf = r.ibuf
		}
		n, progressed, err := r.fill(buf)
		r.err = err
		if small {
			r.pend = buf[:n]
			if n == 0 && err == nil && !progressed {
				return 0, nil
			}
			continue
		}
		if n > 0 || err != nil || !progressed {
			return n, err
		}
		// Everything read so far is a possible tag start: read on.
	}
}

// fill reads once from src into buf, after any held bytes, scans what came
// and returns how many bytes of buf are ready for output.
func (r *reader) fill(buf []byte) (out int, progressed bool, err error) {
	h := copy(buf, r.hold[:r.nhold])
	r.nhold = 0
	n, err := r.src.Read(buf[h : len(buf)-r.reserve])
	total := h + n
	if n > 0 {
		out = r.scanChunk(buf, h, total)
	} else {
		r.nhold = h // nothing new: keep holding
	}
	if err == nil {
		return out, n > 0, nil
	}
	if !r.done {
		r.nhold = 0
		out = total // held bytes turned out to be text
		if err == io.EOF {
			out = r.insert(buf, total, total, ResultInjectedAtEnd)
		} else {
			r.decide(ResultError)
		}
	}
	return out, true, err
}

// scanChunk scans buf[from:to] (buf[:from] are held bytes, already scanned),
// inserts the snippet if the insertion point shows up, and returns the
// number of bytes ready for output; bytes after that are held.
func (r *reader) scanChunk(buf []byte, from, to int) int {
	stop := to
	if avail := r.limit - r.scanned; to-from > avail {
		stop = from + avail
	}
	outcome, pos := r.s.scan(buf[:stop], from)
	switch outcome {
	case scanMatch:
		r.sawOwn(buf[from:max(from, pos)])
		return r.insert(buf, pos, to, ResultInjected)
	case scanBOM:
		r.decide(ResultCharset)
		return to
	}
	r.sawOwn(buf[from:stop])
	r.scanned += stop - from
	if stop < to {
		r.decide(ResultScanLimit)
		return to
	}
	if r.scanned == r.limit {
		// A tag started here would end past the limit: emit everything; the
		// next read decides between the end of the page and the limit.
		return to
	}
	h := r.s.held()
	r.nhold = copy(r.hold[:], buf[to-h:to])
	return to - h
}

// insert moves buf[pos:to] up and writes the snippet at pos. fill left room
// for it at the end of buf.
func (r *reader) insert(buf []byte, pos, to int, result string) int {
	size := len(r.snippet)
	withWidget := r.widget != nil && !r.own
	if withWidget {
		size += len(r.widget)
	}
	copy(buf[pos+size:], buf[pos:to])
	copy(buf[pos:], r.snippet)
	if withWidget {
		copy(buf[pos+len(r.snippet):], r.widget)
	}
	r.decide(result)
	return to + size
}

func (r *reader) decide(result string) {
	r.done = true
	r.report(result)
}

func (r *reader) report(result string) {
	if r.reported {
		return
	}
	r.reported = true
	if r.observe != nil {
		r.observe(result)
	}
}

// sawOwn looks for ownWidgetMarks in the next scanned bytes, including marks
// split across chunks.
func (r *reader) sawOwn(seg []byte) {
	if r.widget == nil || r.own || len(seg) == 0 {
		return
	}
	var joint [2 * (maxMark - 1)]byte
	n := copy(joint[:], r.tail[:r.ntail])
	n += copy(joint[n:], seg)
	if containsMark(joint[:n]) || containsMark(seg) {
		r.own = true
		return
	}
	if len(seg) >= len(r.tail) {
		r.ntail = copy(r.tail[:], seg[len(seg)-len(r.tail):])
	} else {
		r.ntail = copy(r.tail[:], joint[max(0, n-len(r.tail)):n])
	}
}

func containsMark(b []byte) bool {
	for _, m := range ownWidgetMarks {
		if bytes.Contains(b, m) {
			return true
		}
	}
	return false
}

// Close closes the underlying body. A page closed before a decision (the
// client went away) is reported as ResultAborted.
func (r *reader) Close() error {
	r.report(ResultAborted)
	return r.src.Close()
}

// gzipBody decodes a gzip body. It reads the gzip header on the first Read,
// not when the response headers are handled, so a slow upstream does not hold
// up the response headers.
type gzipBody struct {
	body io.ReadCloser
	zr   *gzip.Reader
	err  error
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.zr == nil {
		if g.err != nil {
			return 0, g.err
		}
		zr, err := gzip.NewReader(g.body)
		if err != nil {
			g.err = err // io.EOF for an empty body: an empty page
			return 0, err
		}
		g.zr = zr
	}
	return g.zr.Read(p)
}

func (g *gzipBody) Close() error {
	return g.body.Close()
}
