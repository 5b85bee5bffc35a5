package inject

import (
	"bytes"
	"strings"
	"testing"
)

// mark is where a case expects the snippet.
const mark = "{{}}"

// insertionCases are pages with the expected insertion point marked. Each is
// checked against the oracle too, so a wrong oracle shows up here.
var insertionCases = []struct {
	name string
	doc  string
}{
	{"plain", "<!DOCTYPE html><html><head><title>t</title>" + mark + "</head><body></body></html>"},
	{"comment", "<html><head><!-- </head> -->" + mark + "</head>"},
	{"empty comment <!-->", "<head><!-->" + mark + "</head>"},
	{"empty comment <!--->", "<head><!--->" + mark + "</head>"},
	{"comment ending --!>", "<head><!--a</head>--!>" + mark + "</head>"},
	{"comment with -- inside", "<head><!-- a -- b </head> - -->" + mark + "</head>"},
	{"comment <!--!>", "<head><!--!></head>-->" + mark + "</head>"},
	{"comment --!-->", "<head><!--a--!-->" + mark + "</head>"},
	{"comment --!!>", "<head><!--a--!!></head>-->" + mark + "</head>"},
	{"bogus comment", "<head><! </head> >" + mark + "</head>"},
	{"processing instruction", `<head><?php echo "</head>" ?>` + mark + "</head>"},
	{"cdata is bogus", "<head><![CDATA[</head>]]>" + mark + "</head>"},
	{"empty end tag", "<head></>" + mark + "</head>"},
	{"end tag with space", "<html></ head>" + mark},
	{"script", `<head><script>var s = "</head>";</script>` + mark + "</head>"},
	{"script end tag lookalike", `<head><script>x = "</scripty></head>";</script>` + mark + "</head>"},
	{"script escaped", `<head><script><!--</script>` + mark + "</head>"},
	{"script double escaped", `<head><script><!--<script></head></script></head>--></script>` + mark + "</head>"},
	{"script double escaped closed", `<head><script><!--<script>--></head></script>` + mark + "</head>"},
	{"script escape left by <1", `<head><script><!--<1<script></script>` + mark + "</head>"},
	{"script escaped dashes", `<head><script><!-- a - b -- c --></head></script>` + mark + "</head>"},
	{"script escape ended by -->", `<head><script><!-- --><script></script>` + mark + "</head></script>"},
	{"script -> does not end the escape", `<head><script><!-- -><script></script></head></script>` + mark + "</head>"},
	{"script double escape ended", `<head><script><!--<script></script></script>` + mark + "</head>"},
	{"script document.write", `<head><script>document.write("<!--<script></head></script>-->")</script>` + mark + "</head>"},
	{"self-closing script is raw", `<head><script/></head></script>` + mark + "</head>"},
	{"upper-case script", `<head><SCRIPT></head></ScRiPt>` + mark + "</head>"},
	{"style", `<head><style>a::after{content:"</head>"}</style>` + mark + "</head>"},
	{"title", "<head><title></head><body></title>" + mark + "</head>"},
	{"textarea", "<head><textarea></head></textarea>" + mark + "</head>"},
	{"noscript", "<head><noscript></head></noscript>" + mark + "</head>"},
	{"iframe", "<head><iframe></head></iframe>" + mark + "</head>"},
	{"< right before a raw end tag", "<head><title><</title>" + mark + "</head>"},
	{"xmp noembed noframes", "<xmp></head></xmp><noembed></head></noembed><noframes></head></noframes>" + mark + "</head>"},
	{"raw end tag with attributes", `<title>x</title a="></head>">` + mark + "</head>"},
	{"plaintext", "<head><plaintext></head><body>" + mark},
	{"double-quoted attribute", `<head><meta content="</head>">` + mark + "</head>"},
	{"single-quoted attribute", `<head><meta content='</head>'>` + mark + "</head>"},
	{"unquoted attribute", `<head><meta content=</head >` + mark + "</head>"},
	{"quote inside attribute name", `<head><meta a"b>` + mark + "</head>"},
	{"quote after = in a name", `<head><meta a"b='></head>` + mark},
	{"spaces around =", `<head><a title = "x>y" >` + mark + "</head>"},
	{"leading = in name", `<head><a =">` + mark + `</head>"></head>`},
	{"quoted > in end tag", `<head></div a="></head>">` + mark + "</head>"},
	{"upper-case tags", "<HTML><HEAD><TITLE>x</TITLE>" + mark + "</HEAD>"},
	{"mixed case", "<head>" + mark + "</HeAd>"},
	{"start tag with space", "<HEAD >x" + mark + "</head >"},
	{"end tag with slash", "<head>" + mark + "</head/>"},
	{"end tag with newline", "<head>" + mark + "</head\n>"},
	{"headx", "<head></headx>" + mark + "</head>"},
	{"missing head", "<html>" + mark + "<body><p>x</p></body></html>"},
	{"body with attributes", `<html>` + mark + `<body class="a" onload="f('</head>')">`},
	{"self-closing body", "<p>x</p>" + mark + "<body/>"},
	{"bodyx", "<bodyx></bodyx>" + mark + "<body>"},
	{"missing head and body", "<p>hello</p>" + mark},
	{"empty", mark},
	{"only text", "hello" + mark},
	{"first of body and head", "<html>" + mark + "<body></head>"},
	{"nul in name", "<body\x00></he\x00ad><p>x" + mark},
	{"template", "<template><head>" + mark + "</head></template>"},
	{"lone <", "<head>a < b <<" + mark + "</head>"},
	{"< before letter", "<<<head>" + mark + "</head>"},
	{"cut off </head", "<html>" + mark + "</head "},
	{"cut off <body", "<p>" + mark + `<body class="x`},
	{"cut off before delimiter", "<p></head" + mark},
	{"cut off comment", "<!-- </head>" + mark},
	{"doctype ends at the first >", "<!DOCTYPE html PUBLIC \"a>b\">" + mark + "</head></head>"},
	{"utf-8 bom", "\xEF\xBB\xBF<head>" + mark + "</head>"},
	{"lone FE", "\xFE<head>" + mark + "</head>"},
	{"own widget", `<head><script id="ze-snippet" src="x"></script>` + mark + "</head>"},
}

func TestInsertionPoint(t *testing.T) {
	for _, tc := range insertionCases {
		t.Run(tc.name, func(t *testing.T) {
			at := strings.Index(tc.doc, mark)
			doc := []byte(strings.Replace(tc.doc, mark, "", 1))
			e := oracle(doc, 0)
			if e.at != at {
				t.Fatalf("oracle(%q) inserts at %d (%s); the case says %d", doc, e.at, e.result, at)
			}
			for _, widget := range []string{"", testWidget} {
				checkDoc(t, doc, []byte{3, 0, 0xFF, 7, 1}, 17, 0, widget)
			}
		})
	}
}

func TestUnchanged(t *testing.T) {
	big := "<head><script>" + strings.Repeat("x = '</head>';\n", 20000) + "</script></head>"
	cases := []struct {
		name   string
		doc    string
		limit  int
		result string
	}{
		{"utf-16 BE bom", "\xFE\xFF\x00<\x00h\x00e\x00a\x00d\x00>\x00<\x00/\x00h\x00e\x00a\x00d\x00>", 0, ResultCharset},
		{"utf-16 LE bom", "\xFF\xFE<\x00/\x00h\x00e\x00a\x00d\x00>\x00", 0, ResultCharset},
		{"head after the limit", "<head>" + strings.Repeat("a", 100) + "</head>", 64, ResultScanLimit},
		{"decided one byte after the limit", "<p>" + strings.Repeat("a", 54) + "</head>", 63, ResultScanLimit},
		{"nothing within the limit", strings.Repeat("<p>x</p>", 100), 64, ResultScanLimit},
		{"long inline script", big, 0, ResultScanLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := []byte(tc.doc)
			if e := oracle(doc, tc.limit); e.at != -1 || e.result != tc.result {
				t.Fatalf("oracle = %+v; want unchanged, %s", e, tc.result)
			}
			checkDoc(t, doc, []byte{200, 5, 0xFF, 31}, 4096, tc.limit, testWidget)
		})
	}
}

// TestScanLimitBoundary walks the limit across a page: the snippet goes in
// exactly when the byte that decides </head> is within the limit, and at the
// end exactly when the whole page is.
func TestScanLimitBoundary(t *testing.T) {
	doc := []byte("<html><head><title>t</title></head><body>x</body></html>")
	head := bytes.Index(doc, []byte("</head>"))
	for limit := minScanLimit; limit <= len(doc)+1; limit++ {
		e := oracle(doc, limit)
		wantAt := -1
		if head+len("</head>") <= limit {
			wantAt = head
		}
		if e.at != wantAt {
			t.Fatalf("limit %d: oracle at %d; want %d", limit, e.at, wantAt)
		}
		checkDoc(t, doc, []byte{1, 4, 9}, 7, limit, "")
	}
	noTags := []byte("<p>" + strings.Repeat("x", 40) + "</p>")
	for _, limit := range []int{len(noTags) - 1, len(noTags), len(noTags) + 1} {
		e := oracle(noTags, limit)
		if (e.result == ResultInjectedAtEnd) != (limit >= len(noTags)) {
			t.Fatalf("limit %d for %d bytes: %+v", limit, len(noTags), e)
		}
		checkDoc(t, noTags, []byte{5}, 3, limit, "")
	}
}

// TestOwnWidgetAcrossChunks checks that a widget snippet the page brings is
// found when it is split across reads, and not when it comes after the
// insertion point.
func TestOwnWidgetAcrossChunks(t *testing.T) {
	for _, doc := range []string{
		`<head><script src="https://static.zdassets.com/ekr/snippet.js?key=a"></script></head>`,
		`<head><script id="ze-snippet"></script></head>`,
		`<head></head><script id="ze-snippet"></script>`,
		`<p>zdassets.com</p>`,
	} {
		for size := 0; size < 20; size++ {
			checkDoc(t, []byte(doc), []byte{byte(size)}, 5, 0, testWidget)
		}
	}
}

// TestNoHoldAtLimit checks that bytes that could only become a tag past the
// scan limit are not held back.
func TestNoHoldAtLimit(t *testing.T) {
	doc := []byte("<p>abcdefghi</he")
	r := newReader(&chunkReader{data: doc, all: true}, []byte(testSnippet), nil, len(doc), nil)
	buf := make([]byte, 4096)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != string(doc) {
		t.Fatalf("Read() = %q, %v; want all of %q", buf[:n], err, doc)
	}
}

func TestCloseBeforeDecision(t *testing.T) {
	src := &chunkReader{data: []byte("<html><head><title>")}
	var got []string
	r := newReader(src, []byte(testSnippet), nil, 0, func(s string) { got = append(got, s) })
	if _, err := r.Read(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil || !src.closed {
		t.Fatalf("Close() = %v, closed underlying: %v", err, src.closed)
	}
	if len(got) != 1 || got[0] != ResultAborted {
		t.Fatalf("observed %q; want [%q]", got, ResultAborted)
	}
}

// errReader fails after its data.
type errReader struct {
	data []byte
	err  error
}

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func (e *errReader) Close() error { return nil }

func TestUpstreamErrorBeforeDecision(t *testing.T) {
	boom := bytes.ErrTooLarge
	var got []string
	r := newReader(&errReader{data: []byte("<html></hea"), err: boom}, []byte(testSnippet), nil, 0, func(s string) { got = append(got, s) })
	buf := make([]byte, 4096)
	var out []byte
	var err error
	for err == nil {
		var n int
		n, err = r.Read(buf)
		out = append(out, buf[:n]...)
	}
	if err != boom || string(out) != "<html></hea" {
		t.Fatalf("read %q, %v; want the bytes unchanged and %v", out, err, boom)
	}
	if len(got) != 1 || got[0] != ResultError {
		t.Fatalf("observed %q; want [%q]", got, ResultError)
	}
}

// seeds are the fuzz corpus: every insertion case plus the brief's list.
func seeds() [][]byte {
	var out [][]byte
	for _, tc := range insertionCases {
		out = append(out, []byte(strings.Replace(tc.doc, mark, "", 1)))
	}
	mib := "<html><head><script>" + strings.Repeat("var a = '</head><body>'; // <!-- x\n", 1<<20/36) + "</script></head><body></body></html>"
	return append(out,
		[]byte(`<a b='</head>' c="</head>" d=</head>></head>`),
		[]byte("<HEAD ></HEAD ><BODY >"),
		[]byte("</headx></head x>"),
		[]byte("<script><!--<script>--!></head></script>-->"),
		[]byte("<title><!--</title>--></head>"),
		[]byte(mib),
	)
}

// FuzzInject checks the reader against the tokenizer oracle on random pages,
// random read sizes, buffer sizes and scan limits: the output must be the
// input with the snippet at exactly the oracle's offset, for every chunking.
func FuzzInject(f *testing.F) {
	for i, s := range seeds() {
		f.Add(s, []byte{byte(i), 0, 0xFF, 40}, uint16(i*37), uint32(0), i%2 == 0)
	}
	f.Add([]byte("<head></head>"), []byte{}, uint16(0), uint32(20), true)
	f.Fuzz(func(t *testing.T, doc, sizes []byte, bufSize uint16, limit uint32, widget bool) {
		buf := 1 + int(bufSize)%400
		if bufSize >= 40000 {
			buf = 32 << 10
		}
		w := ""
		if widget {
			w = testWidget
		}
		checkDoc(t, doc, sizes, buf, int(limit%(1<<21)), w)
	})
}
