package inject

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

const benchHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dashboard &middot; Example</title>
<link rel="stylesheet" href="/static/app.css?v=4f1c"><link rel="icon" href="/favicon.ico">
<!-- analytics -->
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments)} gtag('js', new Date()); if (a < b && c > d) {}</script>
<style>body{margin:0;font-family:system-ui,sans-serif}.nav>li{display:inline-block}</style>
<meta property="og:title" content="Example &amp; Co &gt; Dashboard"><meta name='description' content='A "page"'>
<script src="/static/app.js" defer></script>
</head>
<body class="home">
`

const benchRow = `<div class="row"><p>Lorem ipsum dolor sit amet, <a href="/item?id=42&amp;tab=2">consectetur</a> adipiscing elit.</p></div>` + "\n"

// benchPage is a page of about size bytes with a typical head.
func benchPage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(benchHead)
	for b.Len()+len(benchRow)+len("</body></html>") <= size {
		b.WriteString(benchRow)
	}
	b.WriteString("</body></html>")
	return b.Bytes()
}

// sliceBody is a response body over a byte slice; it has only Read, like a
// network body, so io.Copy goes through the copy buffer.
type sliceBody struct {
	data []byte
}

func (s *sliceBody) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func (s *sliceBody) Close() error { return nil }

// writerOnly hides io.Discard's ReadFrom, as ReverseProxy's copy does.
type writerOnly struct{ io.Writer }

var discard io.Writer = writerOnly{io.Discard}

var benchSizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"20KiB", 20 << 10}, {"256KiB", 256 << 10}, {"4MiB", 4 << 20}}

// copyBody copies like ReverseProxy: a 32 KiB buffer, plain Read and Write.
func copyBody(b *testing.B, r io.Reader, buf []byte) {
	if _, err := io.CopyBuffer(discard, r, buf); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkPassthrough(b *testing.B) {
	for _, bs := range benchSizes {
		doc := benchPage(bs.size)
		b.Run(bs.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			src := &sliceBody{}
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				src.data = doc
				copyBody(b, src, buf)
			}
		})
	}
}

func BenchmarkInject(b *testing.B) {
	snippet := []byte(testSnippet)
	for _, bs := range benchSizes {
		doc := benchPage(bs.size)
		b.Run(bs.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			src := &sliceBody{}
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				src.data = doc
				copyBody(b, NewReader(src, snippet, 0), buf)
			}
		})
	}
}

// scanDoc is a page with a 64 KiB head full of what the scanner must step
// over: tags with attributes, inline scripts and styles, comments.
func scanDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`<!DOCTYPE html><html><head><meta charset="utf-8">`)
	for b.Len() < 64<<10 {
		b.WriteString(`<link rel="preload" href="/static/chunk.js" as="script" crossorigin>`)
		b.WriteString(`<meta name="x" content='a "quoted" </head> value'>`)
		b.WriteString(`<script>var x = "</head>"; if (a < b) { y = '<body>'; }</script>`)
		b.WriteString(`<style>.a > .b { content: "</head>"; }</style>`)
		b.WriteString("<!-- </head> <body> -->\n")
	}
	b.WriteString("</head><body></body></html>")
	return b.Bytes()
}

func scanOffset(doc []byte) int {
	var s scanner
	if outcome, pos := s.scan(doc, 0); outcome == scanMatch {
		return pos
	}
	return -1
}

func tokenizerOffset(doc []byte) int {
	z := html.NewTokenizer(bytes.NewReader(doc))
	off := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return -1
		}
		raw := len(z.Raw())
		if tt == html.EndTagToken {
			if name, _ := z.TagName(); string(name) == "head" {
				return off
			}
		}
		off += raw
	}
}

func BenchmarkScan(b *testing.B) {
	doc := scanDoc()
	want := tokenizerOffset(doc)
	if got := scanOffset(doc); got != want || want < 0 {
		b.Fatalf("scanner finds %d, tokenizer %d", got, want)
	}
	b.SetBytes(int64(want))
	b.ReportAllocs()
	for b.Loop() {
		scanOffset(doc)
	}
}

func BenchmarkTokenizerOracle(b *testing.B) {
	doc := scanDoc()
	b.SetBytes(int64(tokenizerOffset(doc)))
	b.ReportAllocs()
	for b.Loop() {
		tokenizerOffset(doc)
	}
}

// patternBody produces n bytes by repeating pattern, without holding them.
type patternBody struct {
	pattern []byte
	n, off  int
}

func (p *patternBody) Read(b []byte) (int, error) {
	if p.n == 0 {
		return 0, io.EOF
	}
	total := 0
	for len(b) > 0 && p.n > 0 {
		c := copy(b[:min(len(b), p.n)], p.pattern[p.off:])
		p.off = (p.off + c) % len(p.pattern)
		p.n -= c
		b = b[c:]
		total += c
	}
	return total, nil
}

func (p *patternBody) Close() error { return nil }

// Pages without head or body, scanned to the end (the limit is above their
// size): time per byte must not grow with the size or the kind of markup.
var noHeadPatterns = []struct{ name, pattern string }{
	{"markup", `<div class="x" data-a='1'>text &amp; <!-- c --> <br/> more</div>` + "\n"},
	{"many-lt", "<<<< a < b <<\n"},
	{"comment-dashes", "<!-- - -- --- -!- --!- -->\n"},
	{"unclosed-script", "<script>if (a<b) x = '<!--<script>';"},
}

func BenchmarkNoHeadBody(b *testing.B) {
	for _, p := range noHeadPatterns {
		for _, size := range []int{1 << 20, 10 << 20} {
			b.Run(fmt.Sprintf("%s/%dMiB", p.name, size>>20), func(b *testing.B) {
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					src := &patternBody{pattern: []byte(p.pattern), n: size}
					copyBody(b, NewReader(src, []byte(testSnippet), 16<<20), buf)
				}
			})
		}
	}
}

// TestLargePageBoundedMemory streams 10 MiB without head or body through the
// reader, scanning all of it, and checks that it allocates next to nothing.
func TestLargePageBoundedMemory(t *testing.T) {
	for _, p := range noHeadPatterns {
		buf := make([]byte, 32<<10)
		src := &patternBody{pattern: []byte(p.pattern), n: 10 << 20}
		var result string
		r := newReader(src, []byte(testSnippet), nil, 16<<20, func(s string) { result = s })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n, err := io.CopyBuffer(discard, r, buf)
		runtime.ReadMemStats(&after)
		if err != nil || n != 10<<20+int64(len(testSnippet)) || result != ResultInjectedAtEnd {
			t.Fatalf("%s: copied %d, %v, result %q", p.name, n, err, result)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("%s: allocated %d bytes for a 10 MiB page; want < 64 KiB", p.name, grew)
		}
	}
}

// TestAllocs checks the allocation budget: one allocation per response (the
// reader), none per Read once the snippet is in.
func TestAllocs(t *testing.T) {
	doc := benchPage(20 << 10)
	buf := make([]byte, 32<<10)
	src := &sliceBody{}
	snippet := []byte(testSnippet)
	perResponse := testing.AllocsPerRun(100, func() {
		src.data = doc
		if _, err := io.CopyBuffer(discard, NewReader(src, snippet, 0), buf); err != nil {
			t.Fatal(err)
		}
	})
	if perResponse > 1 {
		t.Errorf("%v allocations per response; want at most 1", perResponse)
	}

	endless := &patternBody{pattern: []byte(benchRow), n: 1 << 40}
	r := NewReader(io.NopCloser(io.MultiReader(strings.NewReader(benchHead), endless)), []byte(testSnippet), 0)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 7)
	perRead := testing.AllocsPerRun(1000, func() {
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(small); err != nil {
			t.Fatal(err)
		}
	})
	if perRead != 0 {
		t.Errorf("%v allocations per Read after the insertion; want 0", perRead)
	}
}
