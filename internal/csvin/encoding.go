package csvin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Encoding names a character encoding of an input file. The zero value
// means "detect": UTF-8, or UTF-16 when the file starts with a UTF-16
// byte-order mark.
type Encoding string

// The supported encodings.
const (
	EncodingAuto Encoding = ""
	UTF8         Encoding = "UTF-8"
	UTF16LE      Encoding = "UTF-16LE"
	UTF16BE      Encoding = "UTF-16BE"
	Windows1252  Encoding = "WINDOWS-1252"
	ISO8859_1    Encoding = "ISO-8859-1"
	ISO8859_15   Encoding = "ISO-8859-15"
)

// Encodings lists the supported encodings (without EncodingAuto).
func Encodings() []Encoding {
	return []Encoding{UTF8, UTF16LE, UTF16BE, Windows1252, ISO8859_1, ISO8859_15}
}

// encodingAliases maps a folded name (lower case, without '-', '_', ' ' and
// '.') to its encoding.
var encodingAliases = map[string]Encoding{
	"":            EncodingAuto,
	"auto":        EncodingAuto,
	"utf8":        UTF8,
	"ascii":       UTF8,
	"usascii":     UTF8,
	"utf16":       UTF16LE, // Windows' "Unicode": little-endian; a BOM overrides
	"utf16le":     UTF16LE,
	"ucs2le":      UTF16LE,
	"utf16be":     UTF16BE,
	"ucs2be":      UTF16BE,
	"windows1252": Windows1252,
	"cp1252":      Windows1252,
	"win1252":     Windows1252,
	"ansi":        Windows1252,
	"iso88591":    ISO8859_1,
	"latin1":      ISO8859_1,
	"l1":          ISO8859_1,
	"cp819":       ISO8859_1,
	"iso885915":   ISO8859_15,
	"latin9":      ISO8859_15,
	"l9":          ISO8859_15,
}

// ParseEncoding reads an encoding name case-insensitively, ignoring '-',
// '_', '.' and spaces, and accepting common aliases: "utf8", "utf-16le",
// "utf-16" (little-endian, as Windows means it), "latin1", "latin-1",
// "cp1252", "windows-1252", "iso-8859-1", "latin9", "iso-8859-15". The empty
// name and "auto" give EncodingAuto.
func ParseEncoding(name string) (Encoding, error) {
	folded := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ', '.':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(name))
	if e, ok := encodingAliases[folded]; ok {
		return e, nil
	}
	return "", fmt.Errorf("csvin: unknown encoding %q; known: UTF-8, UTF-16LE, UTF-16BE, WINDOWS-1252, ISO-8859-1, ISO-8859-15", name)
}

func (e Encoding) known() bool {
	if e == EncodingAuto {
		return true
	}
	for _, k := range Encodings() {
		if e == k {
			return true
		}
	}
	return false
}

// singleByteTable returns the UTF-8 decoding table of a single-byte
// encoding, nil for the others. ISO-8859-1 is decoded as its superset
// WINDOWS-1252, as browsers do (the WHATWG Encoding Standard): files labelled
// Latin-1 routinely hold '€' and typographic quotes in 0x80-0x9F, where real
// ISO-8859-1 has only unused control codes. Bytes a code page leaves
// undefined decode to the C1 control with the same number.
func singleByteTable(e Encoding) *[256]rune {
	switch e {
	case Windows1252, ISO8859_1:
		return tableWindows1252
	case ISO8859_15:
		return tableISO8859_15
	}
	return nil
}

var (
	tableWindows1252 = buildTable(charmap.Windows1252)
	tableISO8859_15  = buildTable(charmap.ISO8859_15)
)

func buildTable(cm *charmap.Charmap) *[256]rune {
	var t [256]rune
	for i := range t {
		r := cm.DecodeByte(byte(i))
		if r == utf8.RuneError {
			r = rune(i)
		}
		t[i] = r
	}
	return &t
}

// Byte-order marks.
var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
	bomUTF32LE = []byte{0xFF, 0xFE, 0x00, 0x00}
	bomUTF32BE = []byte{0x00, 0x00, 0xFE, 0xFF}
)

// sniffBOM returns the encoding a byte-order mark at the start of prefix
// announces and the mark's length.
func sniffBOM(prefix []byte) (Encoding, int, error) {
	switch {
	case bytes.HasPrefix(prefix, bomUTF32LE), bytes.HasPrefix(prefix, bomUTF32BE):
		return "", 0, &Error{ByteOffset: 0, Reason: "the file is UTF-32, which is not supported; save it as UTF-8"}
	case bytes.HasPrefix(prefix, bomUTF8):
		return UTF8, len(bomUTF8), nil
	case bytes.HasPrefix(prefix, bomUTF16LE):
		return UTF16LE, len(bomUTF16LE), nil
	case bytes.HasPrefix(prefix, bomUTF16BE):
		return UTF16BE, len(bomUTF16BE), nil
	}
	return "", 0, nil
}

// signatures of binary formats people upload instead of CSV.
var signatures = []struct {
	magic string
	what  string
}{
	{"PK\x03\x04", "a ZIP archive (an Excel .xlsx or OpenDocument .ods workbook is one); export the sheet as CSV"},
	{"PK\x05\x06", "a ZIP archive (an Excel .xlsx or OpenDocument .ods workbook is one); export the sheet as CSV"},
	{"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "an old-style Excel .xls workbook (or another Office document); export the sheet as CSV"},
	{"\x89PNG\r\n\x1a\n", "a PNG image"},
	{"\xFF\xD8\xFF", "a JPEG image"},
	{"GIF87a", "a GIF image"},
	{"GIF89a", "a GIF image"},
	{"%PDF-", "a PDF document"},
	{"\x1F\x8B", "a gzip-compressed file; decompress it first"},
	{"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"},
	{"Rar!\x1A\x07", "a RAR archive"},
	{"\x7FELF", "an executable program"},
	{"MZ\x90\x00", "an executable program"},
	{"{\\rtf", "an RTF document"},
}

// sniffBinary returns an *Error when prefix starts like a known binary
// format.
func sniffBinary(prefix []byte) error {
	for _, s := range signatures {
		if bytes.HasPrefix(prefix, []byte(s.magic)) {
			return &Error{ByteOffset: 0, Reason: "this is not a CSV file: it looks like " + s.what}
		}
	}
	return nil
}

// guessUTF16 returns UTF16LE or UTF16BE when prefix, which has no BOM, has
// the NUL bytes of ASCII text in UTF-16, "" otherwise.
func guessUTF16(prefix []byte) Encoding {
	n := len(prefix) &^ 1
	if n < 4 {
		return ""
	}
	var evenNUL, oddNUL int
	for i := 0; i < n; i += 2 {
		if prefix[i] == 0 {
			evenNUL++
		}
		if prefix[i+1] == 0 {
			oddNUL++
		}
	}
	pairs := n / 2
	switch {
	case oddNUL*2 >= pairs && evenNUL*8 < pairs:
		return UTF16LE
	case evenNUL*2 >= pairs && oddNUL*8 < pairs:
		return UTF16BE
	}
	return ""
}

// hasBinaryControls reports whether prefix holds control characters that
// text files do not (NUL included; tab, line breaks, form feed, Ctrl-Z and
// escape excepted).
func hasBinaryControls(prefix []byte) bool {
	for _, c := range prefix {
		if c < 0x20 {
			switch c {
			case '\t', '\n', '\v', '\f', '\r', 0x1A, 0x1B:
			default:
				return true
			}
		}
	}
	return false
}

// pending is a problem found in the input at a known offset; the Reader
// reports it when its parsing reaches that point, so that the error
// carries the line and column.
type pending struct {
	offset int64  // file offset of the offending byte
	reason string // complete reason, for Error.Reason
	ioErr  error  // a read error of the underlying reader (reason unused)
}

func (p *pending) Error() string { return p.reason }

func nulReason(offset int64, guess Encoding) string {
	if guess != "" {
		return fmt.Sprintf("NUL byte at byte %d — the file looks like %s without a byte-order mark; name its encoding (%s) to read it", offset, guess, guess)
	}
	return fmt.Sprintf("NUL byte at byte %d — is this a binary or UTF-16 file?", offset)
}

// decoder transcodes a UTF-16 or single-byte encoded stream to UTF-8. It
// stops at the first NUL character or invalid UTF-16 sequence and returns
// a *pending that carries the offset of the offending bytes in the original
// file; the bytes before it are delivered first. It only ever writes whole
// characters, so its output is always valid UTF-8 without NUL bytes.
type decoder struct {
	src      io.Reader
	in       []byte
	ip, iw   int
	offset   int64 // file offset of in[ip]
	eof      bool
	err      error // sticky: *pending or a read error
	table    *[256]rune
	utf16    bool
	bigEnd   bool
	nulGuess Encoding
}

func newDecoder(src io.Reader, enc Encoding, offset int64, nulGuess Encoding) *decoder {
	return &decoder{
		src:      src,
		in:       make([]byte, 16<<10),
		offset:   offset,
		table:    singleByteTable(enc),
		utf16:    enc == UTF16LE || enc == UTF16BE,
		bigEnd:   enc == UTF16BE,
		nulGuess: nulGuess,
	}
}

// ensure tries to have k unread input bytes and reports whether it has.
func (d *decoder) ensure(k int) bool {
	for d.iw-d.ip < k {
		if d.eof || d.err != nil {
			return false
		}
		if d.ip > 0 {
			d.iw = copy(d.in, d.in[d.ip:d.iw])
			d.ip = 0
		}
		n, err := d.src.Read(d.in[d.iw:])
		d.iw += n
		if err == io.EOF {
			d.eof = true
		} else if err != nil {
			d.err = &pending{offset: d.offset + int64(d.iw-d.ip), ioErr: err}
		}
	}
	return true
}

func (d *decoder) fail(n int, p *pending) (int, error) {
	d.err = p
	return n, p
}

// Read implements io.Reader; len(p) must be at least utf8.UTFMax.
func (d *decoder) Read(p []byte) (int, error) {
	n := 0
	for len(p)-n >= utf8.UTFMax {
		need := 1
		if d.utf16 {
			need = 2
		}
		if d.iw-d.ip < need {
			if n > 0 && (d.eof || d.err != nil) {
				break // deliver what we have first
			}
			if !d.ensure(need) {
				if d.err != nil {
					return n, d.err
				}
				if d.ip < d.iw { // one byte of a UTF-16 unit left
					return d.fail(n, &pending{offset: d.offset, reason: fmt.Sprintf(
						"the file ends in the middle of a UTF-16 character at byte %d (it has an odd number of bytes)", d.offset)})
				}
				return n, io.EOF
			}
		}
		if d.table != nil {
			// Single-byte encodings: copy as much as fits.
			for d.ip < d.iw && len(p)-n >= utf8.UTFMax {
				b := d.in[d.ip]
				switch {
				case b == 0:
					return d.fail(n, &pending{offset: d.offset, reason: nulReason(d.offset, d.nulGuess)})
				case b < utf8.RuneSelf:
					p[n] = b
					n++
				default:
					n += utf8.EncodeRune(p[n:], d.table[b])
				}
				d.ip++
				d.offset++
			}
			continue
		}
		u := d.unit(d.ip)
		size := 2
		r := rune(u)
		switch {
		case u == 0:
			return d.fail(n, &pending{offset: d.offset, reason: fmt.Sprintf("NUL character at byte %d — is this a binary file?", d.offset)})
		case utf16.IsSurrogate(r):
			if u >= 0xDC00 || !d.ensure(4) {
				return d.fail(n, d.badSurrogate(u))
			}
			u2 := d.unit(d.ip + 2)
			if u2 < 0xDC00 || u2 > 0xDFFF {
				return d.fail(n, d.badSurrogate(u))
			}
			r = utf16.DecodeRune(r, rune(u2))
			size = 4
		}
		n += utf8.EncodeRune(p[n:], r)
		d.ip += size
		d.offset += int64(size)
	}
	return n, nil
}

func (d *decoder) unit(i int) uint16 {
	if d.bigEnd {
		return uint16(d.in[i])<<8 | uint16(d.in[i+1])
	}
	return uint16(d.in[i]) | uint16(d.in[i+1])<<8
}

func (d *decoder) badSurrogate(u uint16) *pending {
	return &pending{offset: d.offset, reason: fmt.Sprintf("invalid UTF-16 at byte %d: unpaired surrogate 0x%04X", d.offset, u)}
}

var errNoProgress = errors.New("csvin: the underlying reader returns no data and no error")
