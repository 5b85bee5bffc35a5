package inject

import "bytes"

// The scanner is a byte-level copy of the parts of the HTML tokenizer
// (golang.org/x/net/html.Tokenizer, itself following WHATWG §13.2.5) that decide
// whether a "</head" or "<body" seen in the stream is a real tag: tags with
// their quoted attribute values, comments, bogus comments and doctypes, the raw
// text of script/style/title/textarea/iframe/noscript/xmp/noembed/noframes
// (including the escape rules inside script), and plaintext. It keeps no bytes,
// only a few fields of state, so a document can be fed to it in chunks of any
// size. FuzzInject checks it against the tokenizer.

// Scanner states.
const (
	stBOM0        uint8 = iota // first byte of the body: may start a UTF-16 byte order mark
	stBOM1                     // after a first byte FE or FF
	stData                     // text
	stTagOpen                  // after "<"
	stEndTagOpen               // after "</"
	stTagName                  // in the name of a start or end tag
	stBeforeAttr               // in a tag, before an attribute name or the closing ">"
	stAttrKey                  // in an attribute name
	stAfterKey                 // after an attribute name
	stBeforeValue              // after "="
	stQuoted                   // in a quoted attribute value
	stUnquoted                 // in an unquoted attribute value
	stMarkup                   // after "<!"
	stMarkupDash               // after "<!-"
	stComment                  // in "<!--...", until "-->", "--!>" or an early ">"
	stBogus                    // in a doctype or bogus comment, until ">"
	stRaw                      // in RCDATA/RAWTEXT, until the end tag named in raw
	stScript                   // in script data (sub-state in sc)
	stPlaintext                // after <plaintext>: text until the end of input
)

// Outcomes of scanner.scan.
const (
	scanMore  = iota // every byte was consumed without a decision
	scanMatch        // a "</head" or "<body" tag starts at the returned position
	scanBOM          // the body starts with a UTF-16 byte order mark
)

// scanner holds the tokenizer state between chunks.
type scanner struct {
	st    uint8
	sc    uint8  // script sub-state
	k     int    // characters of an end tag name matched in raw text or script
	raw   string // lower-case name of the element whose end tag ends raw text
	quote byte   // the quote character of stQuoted
	bom   byte   // first byte while in stBOM1

	isEnd   bool    // the tag being read is an end tag
	cand    bool    // the tag name read so far is a prefix of "head" (end tag) or "body" (start tag)
	nameLen int     // length of the tag name read so far
	name    [9]byte // its first bytes, lower-cased; the longest name that matters is "plaintext"
	dash    uint8   // comment: dashes just seen, saturated at 2
	begin   bool    // comment: only dashes since "<!--"
	bang    bool    // comment: "--!" just seen
}

// Byte classes for the tag loops.
const (
	clSpace   = 1 << iota // ' ', '\n', '\r', '\t', '\f'
	clNameEnd             // ends a tag name: space, '/', '>'
	clKeyEnd              // ends an attribute name: space, '/', '>', '='
	clValEnd              // ends an unquoted value: space, '>'
)

var class = func() (t [256]uint8) {
	for _, c := range []byte(" \n\r\t\f") {
		t[c] = clSpace | clNameEnd | clKeyEnd | clValEnd
	}
	t['/'] = clNameEnd | clKeyEnd
	t['>'] = clNameEnd | clKeyEnd | clValEnd
	t['='] = clKeyEnd
	return t
}()

func isLetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// held reports how many bytes at the end of the input seen so far might be the
// start of a "</head" or "<body" tag, so the caller must not emit them yet: the
// snippet may still have to go in front of them.
func (s *scanner) held() int {
	switch s.st {
	case stTagOpen:
		return 1
	case stEndTagOpen:
		return 2
	case stTagName:
		if s.cand {
			if s.isEnd {
				return s.nameLen + 2
			}
			return s.nameLen + 1
		}
	}
	return 0
}

// scan consumes b[i:]; b[:i] holds bytes already scanned, among them any that
// held reported last time. On scanMatch, pos is the index in b of the "<" that
// starts the tag. On scanBOM, pos is the index after the mark.
func (s *scanner) scan(b []byte, i int) (outcome, pos int) {
	for i < len(b) {
		c := b[i]
		switch s.st {
		case stBOM0:
			if c == 0xFE || c == 0xFF {
				s.bom, s.st = c, stBOM1
				i++
			} else {
				s.st = stData
			}
		case stBOM1:
			if s.bom == 0xFE && c == 0xFF || s.bom == 0xFF && c == 0xFE {
				return scanBOM, i + 1
			}
			s.st = stData
		case stData:
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				return scanMore, 0
			}
			i += j + 1
			s.st = stTagOpen
		case stTagOpen:
			switch {
			case isLetter(c):
				s.startName(false)
			case c == '/':
				s.st = stEndTagOpen
				i++
			case c == '!':
				s.st = stMarkup
				i++
			case c == '?':
				s.st = stBogus // the '?' belongs to the bogus comment
				i++
			default:
				s.st = stData // "<" was text; look at c again
			}
		case stEndTagOpen:
			switch {
			case isLetter(c):
				s.startName(true)
			case c == '>':
				s.st = stData // "</>" is dropped by the tokenizer
				i++
			default:
				s.st = stBogus
			}
		case stTagName:
			i = s.tagName(b, i)
			if s.st == stTagName {
				return scanMore, 0
			}
			if s.cand && s.nameLen == 4 {
				// "</head" or "<body" followed by a space, '/' or '>': the
				// tokenizer reads it as that tag, unless the input ends
				// before the tag's '>' (it then drops the tag; the oracle
				// in reader_test.go accounts for that).
				n := 5
				if s.isEnd {
					n = 6
				}
				return scanMatch, i - n
			}
			// stBeforeAttr goes on with the byte that ended the name.
		case stBeforeAttr, stAttrKey, stAfterKey, stBeforeValue, stQuoted, stUnquoted:
			i = s.tag(b, i)
		case stMarkup:
			if c == '-' {
				s.st = stMarkupDash
				i++
			} else {
				s.st = stBogus // doctype or bogus comment: both end at the next '>'
			}
		case stMarkupDash:
			if c == '-' {
				s.st, s.dash, s.begin, s.bang = stComment, 0, true, false
				i++
			} else {
				s.st = stBogus
			}
		case stComment:
			i = s.comment(b, i)
		case stBogus:
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				return scanMore, 0
			}
			i += j + 1
			s.st = stData
		case stRaw:
			i = s.rawText(b, i)
		case stScript:
			i = s.script(b, i)
		case stPlaintext:
			return scanMore, 0
		}
	}
	return scanMore, 0
}

// startName begins a tag name; the caller leaves the first letter to be read
// by tagName.
func (s *scanner) startName(end bool) {
	s.st, s.isEnd, s.cand, s.nameLen = stTagName, end, true, 0
}

// tagName consumes tag name bytes and returns the index of the byte that ends
// the name (a space, '/' or '>'), or len(b) if the name goes on.
func (s *scanner) tagName(b []byte, i int) int {
	target := "body"
	if s.isEnd {
		target = "head"
	}
	for ; i < len(b); i++ {
		c := b[i]
		if class[c]&clNameEnd != 0 {
			s.st = stBeforeAttr
			return i
		}
		c = toLower(c)
		if s.nameLen < len(s.name) {
			s.name[s.nameLen] = c
		}
		s.cand = s.cand && s.nameLen < len(target) && c == target[s.nameLen]
		s.nameLen++
	}
	return i
}

// tag consumes the attributes of a tag and its closing '>', following the
// tokenizer's readTag, readTagAttrKey and readTagAttrVal. It keeps the state
// in a local variable for speed and stores it when the input runs out.
func (s *scanner) tag(b []byte, i int) int {
	st := s.st
	for i < len(b) {
		switch st {
		case stBeforeAttr:
			for i < len(b) && class[b[i]]&clSpace != 0 {
				i++
			}
			if i == len(b) {
				break
			}
			if b[i] == '>' {
				s.endTag()
				return i + 1
			}
			st = stAttrKey
			if b[i] == '=' {
				i++ // a leading '=' is part of the name
			}
		case stAttrKey:
			for i < len(b) && class[b[i]]&clKeyEnd == 0 {
				i++
			}
			if i < len(b) {
				st = stAfterKey
			}
		case stAfterKey:
			for i < len(b) && class[b[i]]&clSpace != 0 {
				i++
			}
			if i == len(b) {
				break
			}
			switch b[i] {
			case '/':
				st = stBeforeAttr
				i++
			case '=':
				st = stBeforeValue
				i++
			default:
				st = stBeforeAttr
			}
		case stBeforeValue:
			for i < len(b) && class[b[i]]&clSpace != 0 {
				i++
			}
			if i == len(b) {
				break
			}
			switch c := b[i]; c {
			case '>':
				st = stBeforeAttr
			case '"', '\'':
				st, s.quote = stQuoted, c
				i++
			default:
				st = stUnquoted
				i++
			}
		case stQuoted:
			j := bytes.IndexByte(b[i:], s.quote)
			if j < 0 {
				i = len(b)
				break
			}
			i += j + 1
			st = stBeforeAttr
		case stUnquoted:
			for i < len(b) && class[b[i]]&clValEnd == 0 {
				i++
			}
			if i < len(b) {
				st = stBeforeAttr
				if b[i] != '>' {
					i++ // the space ends the value
				}
			}
		}
	}
	s.st = st
	return i
}

// endTag is called after the '>' of a tag: a start tag of a raw text element
// switches the tokenizer to that element's text rules (the tokenizer does so
// even for "<script/>").
func (s *scanner) endTag() {
	s.st = stData
	if s.isEnd || s.nameLen > len(s.name) {
		return
	}
	switch string(s.name[:s.nameLen]) {
	case "script":
		s.st, s.sc = stScript, scData
	case "plaintext":
		s.st = stPlaintext
	case "style", "textarea", "title", "iframe", "noscript", "noembed", "noframes", "xmp":
		s.st, s.raw, s.k = stRaw, rawTextTag(s.name[:s.nameLen]), -1
	}
}

// leaveRaw is called when the end tag of a raw text element has been
// recognised up to the byte after its name: the tokenizer reads that end tag
// again as an ordinary tag, so continue in the tag with that byte.
func (s *scanner) leaveRaw() {
	s.st, s.isEnd = stBeforeAttr, true
}

// comment consumes comment bytes, following the tokenizer's readComment.
func (s *scanner) comment(b []byte, i int) int {
	for i < len(b) {
		if s.dash == 0 && !s.begin && !s.bang {
			// Only a '-' can start the end of the comment from here.
			j := bytes.IndexByte(b[i:], '-')
			if j < 0 {
				return len(b)
			}
			i += j
		}
		c := b[i]
		i++
		if s.bang {
			s.bang = false
			switch c {
			case '>':
				s.st = stData
				return i
			case '-':
				s.dash, s.begin = 1, false
			default:
				s.dash, s.begin = 0, false
			}
			continue
		}
		switch c {
		case '-':
			if s.dash < 2 {
				s.dash++
			}
			continue
		case '>':
			if s.dash >= 2 || s.begin {
				s.st = stData
				return i
			}
		case '!':
			if s.dash >= 2 {
				s.bang = true
				continue
			}
		}
		s.dash, s.begin = 0, false
	}
	return i
}

// rawTextTag returns the constant for a raw-text element name, so the scanner keeps no slice of its
// (reused) name buffer.
func rawTextTag(name []byte) string {
	for _, t := range [...]string{"style", "textarea", "title", "iframe", "noscript", "noembed", "noframes", "xmp"} {
		if string(name) == t {
			return t
		}
	}
	return ""
}
