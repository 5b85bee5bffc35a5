package inject

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

const (
	testSnippet = `<script src="/zendesk/auth.js?v=0123456789abcdef" defer></script>`
	testWidget  = `<script id="ze-snippet" src="https://static.zdassets.com/ekr/snippet.js?key=k" defer></script>`
)

// expectation is what the reader must do with a document.
type expectation struct {
	at     int // offset of the snippet; -1: the document passes unchanged
	result string
}

// oracle computes the insertion point with golang.org/x/net/html's Tokenizer:
// the offset (sum of len(Raw())) of the first token that is an end tag "head"
// or a start (or self-closing) tag "body", else the end of the input. Two
// differences are imposed by streaming in O(1) memory, and accounted for here
// and nowhere else:
//
//  1. The first of the two tags wins. The tokenizer rule "first </head>, else
//     first <body" would need the rest of the page buffered after a <body in
//     case a stray </head> followed. (Browsers agree with the first-of rule:
//     after <body they ignore </head>.)
//  2. "</head" or "<body" followed by a space, '/' or '>' is decided there.
//     The tokenizer drops a tag that the end of input cuts off before its '>'
//     (ErrorToken) and would put the snippet after those bytes; the reader has
//     already put it before them. So a tag cut off by the end of input counts.
//
// The rest is docs/reference.md §5: a UTF-16 byte order mark leaves the page unchanged, and so
// does a decision that needs bytes past the scan limit; a page that ends
// within the limit without either tag gets the snippet at the end.
func oracle(doc []byte, limit int) expectation {
	switch {
	case limit <= 0:
		limit = DefaultScanLimit
	case limit < minScanLimit:
		limit = minScanLimit
	}
	if len(doc) >= 2 && (doc[0] == 0xFE && doc[1] == 0xFF || doc[0] == 0xFF && doc[1] == 0xFE) {
		return expectation{-1, ResultCharset}
	}
	z := html.NewTokenizer(bytes.NewReader(doc))
	off, at, decided := 0, -1, 0
tokens:
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if n := cutOffTag(doc[off:]); n > 0 { // difference 2
				at, decided = off, off+n
			}
			break
		}
		raw := len(z.Raw())
		switch tt {
		case html.EndTagToken, html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			if tt == html.EndTagToken && string(name) == "head" {
				at, decided = off, off+len("</head>")
				break tokens
			}
			if tt != html.EndTagToken && string(name) == "body" {
				at, decided = off, off+len("<body>")
				break tokens
			}
		}
		off += raw
	}
	switch {
	case at >= 0 && decided <= limit:
		return expectation{at, ResultInjected}
	case at < 0 && len(doc) <= limit:
		return expectation{len(doc), ResultInjectedAtEnd}
	}
	return expectation{-1, ResultScanLimit}
}

// cutOffTag returns the length up to and including the deciding byte if the
// input left over at the tokenizer's ErrorToken starts "</head" or "<body"
// followed by a space or '/'.
func cutOffTag(tail []byte) int {
	for _, p := range []string{"</head", "<body"} {
		if len(tail) > len(p) && strings.EqualFold(string(tail[:len(p)]), p) {
			switch tail[len(p)] {
			case ' ', '\n', '\r', '\t', '\f', '/':
				return len(p) + 1
			}
		}
	}
	return 0
}

// want is the output for a document and an expectation.
func want(doc []byte, e expectation, snippet, widget string) []byte {
	if e.at < 0 {
		return doc
	}
	ins := snippet
	if widget != "" && !bytes.Contains(doc[:e.at], []byte("ze-snippet")) && !bytes.Contains(doc[:e.at], []byte("zdassets.com")) {
		ins += widget
	}
	return slices.Concat(doc[:e.at], []byte(ins), doc[e.at:])
}

// chunkReader returns its data in reads whose sizes come from sizes (1 + the
// next byte, cycling; 1 each if sizes is empty; all at once with all). A size byte of 0xFF after a
// non-empty read yields (0, nil); with eofWithData the last read carries
// io.EOF along with its bytes.
type chunkReader struct {
	data        []byte
	sizes       []byte
	i           int
	eofWithData bool
	all         bool // everything in one read
	lastEmpty   bool
	closed      bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if c.all {
		n = len(c.data)
	} else if len(c.sizes) > 0 {
		s := c.sizes[c.i%len(c.sizes)]
		c.i++
		if s == 0xFF && !c.lastEmpty {
			c.lastEmpty = true
			return 0, nil
		}
		n = 1 + int(s)
	}
	c.lastEmpty = false
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	if len(c.data) == 0 && c.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

func (c *chunkReader) Close() error {
	c.closed = true
	return nil
}

// readAll reads r to the end with a buffer of bufSize bytes, like
// ReverseProxy's copy loop.
func readAll(t testing.TB, r io.Reader, bufSize int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, bufSize)
	for zeros := 0; ; {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n == 0 {
			if zeros++; zeros > 100 {
				t.Fatal("Read keeps returning 0, nil")
			}
		} else {
			zeros = 0
		}
	}
}

// run passes doc through the reader and returns the output and the results
// observed.
func run(t testing.TB, doc []byte, src *chunkReader, bufSize, limit int, widget string) ([]byte, []string) {
	t.Helper()
	var got []string
	var w []byte
	if widget != "" {
		w = []byte(widget)
	}
	r := newReader(src, []byte(testSnippet), w, limit, func(s string) { got = append(got, s) })
	out := readAll(t, r, bufSize)
	if err := r.Close(); err != nil || !src.closed {
		t.Fatalf("Close() = %v, closed underlying: %v", err, src.closed)
	}
	return out, got
}

// checkDoc runs doc through the reader with several chunkings and buffer
// sizes and compares each output with the oracle's.
func checkDoc(t *testing.T, doc []byte, sizes []byte, bufSize, limit int, widget string) {
	t.Helper()
	e := oracle(doc, limit)
	wantOut := want(doc, e, testSnippet, widget)
	type variant struct {
		name string
		src  *chunkReader
		buf  int
	}
	// Pages over 64 KiB (the 1 MiB seed) are read in 7-byte pieces instead of
	// single bytes, to keep the fuzzer fast; the fuzzed chunks still vary.
	small := []byte(nil)
	if len(doc) > 64<<10 {
		small = []byte{6}
	}
	variants := []variant{
		{"fuzzed chunks", &chunkReader{data: doc, sizes: sizes, eofWithData: len(sizes)%2 == 1}, bufSize},
		{"1-byte reads", &chunkReader{data: doc, sizes: small}, 1},
		{"1-byte reads, big buffer", &chunkReader{data: doc, sizes: small}, 32 << 10},
		{"one read", &chunkReader{data: doc, all: true, eofWithData: true}, len(doc) + 4096},
	}
	for _, v := range variants {
		out, results := run(t, doc, v.src, v.buf, limit, widget)
		if !bytes.Equal(out, wantOut) {
			t.Fatalf("%s (buffer %d, limit %d): output differs from oracle (insert at %d, %s)\ndoc:  %q\ngot:  %q\nwant: %q",
				v.name, v.buf, limit, e.at, e.result, trim(doc), trim(out), trim(wantOut))
		}
		if len(results) != 1 || results[0] != e.result {
			t.Fatalf("%s: observed %q; want [%q]\ndoc: %q", v.name, results, e.result, trim(doc))
		}
	}
}

func trim(b []byte) []byte {
	if len(b) > 400 {
		return slices.Concat(b[:200], []byte("…"), b[len(b)-200:])
	}
	return b
}
