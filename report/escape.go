package report

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Escape makes an untrusted string (a unix socket path, a process name)
// safe to print on a terminal: printable characters pass, a backslash
// doubles, \n \r \t are written as such, other control characters
// (C0, DEL, C1) and bytes that are not UTF-8 as \xHH, and invisible
// formatting characters that reorder or hide text (bidi overrides,
// zero-width characters) as \uHHHH. Nothing it returns moves the cursor or
// starts an escape sequence, and distinct inputs stay distinct.
func Escape(s string) string {
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return string(AppendEscaped(make([]byte, 0, len(s)+8), s))
}

// AppendEscaped appends Escape(s) to b.
func AppendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '\\':
			b = append(b, `\\`...)
			i++
			continue
		case '\n':
			b = append(b, `\n`...)
			i++
			continue
		case '\r':
			b = append(b, `\r`...)
			i++
			continue
		case '\t':
			b = append(b, `\t`...)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			for _, x := range []byte(s[i : i+n]) {
				b = append(b, `\x`...)
				b = append(b, hex[x>>4], hex[x&15])
			}
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
			b = append(b, `\u`...)
			q := strconv.FormatInt(int64(r), 16)
			for k := len(q); k < 4; k++ {
				b = append(b, '0')
			}
			b = append(b, q...)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

const hex = "0123456789abcdef"
