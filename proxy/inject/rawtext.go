package inject

import "bytes"

// Raw text: the text of script, style, title, textarea, iframe, noscript,
// xmp, noembed and noframes elements, where tags do not count until the
// element's own end tag. Script data has extra escape states (for
// "<!--<script>...</script>-->"), copied from the tokenizer's readScript.

// Sub-states of stScript, named after the tokenizer's script data states.
const (
	scData uint8 = iota
	scLT
	scEndOpen
	scEscStart
	scEscStartDash
	scEsc
	scEscDash
	scEscDashDash
	scEscLT
	scEscEndOpen
	scDblStart
	scDbl
	scDblDash
	scDblDashDash
	scDblLT
	scDblEnd
)

// matchEnd advances the end tag matcher for name by one byte c: it returns
// +1 when c continues the name, 2 when the name is complete and c ends it, and
// -1 when c does not fit (the caller looks at c again in its fallback state).
func matchEnd(name string, k int, c byte) int {
	if k < len(name) {
		if c == name[k] || c == name[k]-('a'-'A') {
			return 1
		}
		return -1
	}
	if class[c]&clNameEnd != 0 {
		return 2
	}
	return -1
}

// rawText consumes RCDATA/RAWTEXT until "</" + s.raw + a space, '/' or '>'.
// s.k is -1 while looking for '<', 0 after '<', and 1+n after "</" and n
// bytes of the name.
func (s *scanner) rawText(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		switch {
		case s.k < 0:
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				return len(b)
			}
			i += j + 1
			s.k = 0
		case s.k == 0:
			if c == '/' {
				s.k = 1
				i++
			} else {
				s.k = -1
			}
		default:
			switch matchEnd(s.raw, s.k-1, c) {
			case 1:
				s.k++
				i++
			case 2:
				s.leaveRaw()
				return i
			default:
				s.k = -1
			}
		}
	}
	return i
}

// script consumes script data, following the tokenizer's readScript state by
// state (including where it differs from the WHATWG text).
func (s *scanner) script(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		switch s.sc {
		case scData:
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				return len(b)
			}
			i += j + 1
			s.sc = scLT
		case scLT:
			switch c {
			case '/':
				s.sc, s.k = scEndOpen, 0
				i++
			case '!':
				s.sc = scEscStart
				i++
			default:
				s.sc = scData
			}
		case scEndOpen, scEscEndOpen, scDblEnd:
			switch matchEnd("script", s.k, c) {
			case 1:
				s.k++
				i++
			case 2:
				if s.sc == scDblEnd {
					s.sc = scEsc // "</script>" only ends the double escape
					i++
				} else {
					s.leaveRaw()
					return i
				}
			default:
				switch s.sc {
				case scEndOpen:
					s.sc = scData
				case scEscEndOpen:
					s.sc = scEsc
				default:
					s.sc = scDbl
				}
			}
		case scEscStart:
			if c == '-' {
				s.sc = scEscStartDash
				i++
			} else {
				s.sc = scData
			}
		case scEscStartDash:
			if c == '-' {
				s.sc = scEscDashDash
				i++
			} else {
				s.sc = scData
			}
		case scEsc, scEscDash, scEscDashDash:
			i++
			switch {
			case c == '-' && s.sc == scEsc:
				s.sc = scEscDash
			case c == '-':
				s.sc = scEscDashDash
			case c == '<':
				s.sc = scEscLT
			case c == '>' && s.sc == scEscDashDash:
				s.sc = scData
			default:
				s.sc = scEsc
			}
		case scEscLT:
			switch {
			case c == '/':
				s.sc, s.k = scEscEndOpen, 0
				i++
			case isLetter(c):
				s.sc, s.k = scDblStart, 0
			default:
				s.sc = scData // the tokenizer goes back to script data here, not to escaped
			}
		case scDblStart:
			switch matchEnd("script", s.k, c) {
			case 1:
				s.k++
				i++
			case 2:
				s.sc = scDbl
				i++
			default:
				s.sc = scEsc
			}
		case scDbl, scDblDash, scDblDashDash:
			i++
			switch {
			case c == '-' && s.sc == scDbl:
				s.sc = scDblDash
			case c == '-':
				s.sc = scDblDashDash
			case c == '<':
				s.sc = scDblLT
			case c == '>' && s.sc == scDblDashDash:
				s.sc = scData
			default:
				s.sc = scDbl
			}
		case scDblLT:
			if c == '/' {
				s.sc, s.k = scDblEnd, 0
				i++
			} else {
				s.sc = scDbl
			}
		}
	}
	return i
}
