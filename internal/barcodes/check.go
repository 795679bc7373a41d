package barcodes

import (
	"strconv"
	"unicode/utf8"

	"github.com/lintel/lintel/internal/apperr"
)

// Check reports whether Render can encode value in symbology, without
// encoding it: a pass or two over the value's bytes, and no allocation for
// a value of ordinary length that fits.
// Its errors are *apperr.Error (INVALID_ARGUMENT) with a message meant for
// the person who typed the value.
func Check(symbology, value string) error {
	if value == "" {
		if _, ok := quietZone[symbology]; !ok {
			return unknownSymbology(symbology)
		}
		return apperr.New(apperr.Invalid, "the barcode value is empty")
	}
	switch symbology {
	case QR:
		return checkQR(value)
	case Code128:
		return checkCode128(value)
	case PDF417:
		return checkPDF417(value)
	case DataMatrix:
		return checkDataMatrix(value)
	case Aztec:
		return checkAztec(value)
	}
	return unknownSymbology(symbology)
}

func unknownSymbology(s string) error {
	return apperr.New(apperr.Invalid, "unknown barcode symbology %q (one of QR, PDF417, CODE128, AZTEC, DATAMATRIX)", s)
}

func invalidUTF8() error {
	return apperr.New(apperr.Invalid, "the barcode value is not valid UTF-8 text")
}

func tooLong(format string, args ...any) error { return apperr.New(apperr.Invalid, format, args...) }

// QR

type qrMode int

const (
	qrNumeric qrMode = iota
	qrAlphanumeric
	qrByte
)

// qrAlnum marks the 45 characters of QR's alphanumeric mode.
var qrAlnum = func() (t [256]bool) {
	for _, c := range "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:" {
		t[c] = true
	}
	return t
}()

func qrModeOf(s string) qrMode {
	m := qrNumeric
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			continue
		}
		if !qrAlnum[c] {
			return qrByte
		}
		m = qrAlphanumeric
	}
	return m
}

// QR capacities at version 40, level M: 2334 data codewords, less the 4-bit
// mode indicator and the character count (14, 13 and 16 bits in numeric,
// alphanumeric and byte mode).
const (
	qrMaxDigits       = 5596
	qrMaxAlphanumeric = 3391
	qrMaxBytes        = 2331
)

func checkQR(s string) error {
	switch qrModeOf(s) {
	case qrNumeric:
		if len(s) > qrMaxDigits {
			return tooLong("too long for QR: %d digits, at most %d", len(s), qrMaxDigits)
		}
	case qrAlphanumeric:
		if len(s) > qrMaxAlphanumeric {
			return tooLong("too long for QR: %d characters, at most %d", len(s), qrMaxAlphanumeric)
		}
	default:
		if !utf8.ValidString(s) {
			return invalidUTF8()
		}
		if len(s) > qrMaxBytes {
			return tooLong("too long for QR: %d bytes, at most %d", len(s), qrMaxBytes)
		}
	}
	return nil
}

// CODE128

const code128MaxChars = 80

func checkCode128(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return cannotEncode(Code128, s[i:], "only ASCII")
		}
	}
	if len(s) > code128MaxChars {
		return tooLong("too long for CODE128: %d characters, at most %d", len(s), code128MaxChars)
	}
	return nil
}

// cannotEncode names the first character of rest, which symbology cannot
// hold.
func cannotEncode(symbology, rest, which string) error {
	r, n := utf8.DecodeRuneInString(rest)
	if r == utf8.RuneError && n <= 1 {
		return invalidUTF8()
	}
	return apperr.New(apperr.Invalid, "%s cannot encode %s (%s)", symbology, strconv.QuoteToGraphic(string(r)), which)
}

// Latin-1 symbologies

// latin1Scan checks that s is valid UTF-8 of Latin-1 characters and reports
// whether it is all ASCII.
func latin1Scan(symbology, s string) (ascii bool, err error) {
	ascii = true
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			continue
		}
		ascii = false
		r, n := utf8.DecodeRuneInString(s[i:])
		if r > 0xff || (r == utf8.RuneError && n <= 1) {
			return false, cannotEncode(symbology, s[i:], "only Latin-1 characters")
		}
		i += n - 1
	}
	return ascii, nil
}

// latin1At returns the Latin-1 byte of the character starting at s[i] and
// the character's length in s.
func latin1At(s string, i int) (byte, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return c, 1
	}
	// Two-byte UTF-8 (Check's latin1Scan has run): 110000xx 10xxxxxx.
	return s[i]<<6 | s[i+1]&0x3f, 2
}

// DATAMATRIX

// dataMatrixMaxCodewords is the data capacity of the largest square
// symbol (144×144: 36 regions of 22×22 modules, 2178 codewords, 620 of
// them error correction).
const dataMatrixMaxCodewords = 1558

// dataMatrixGS1 is the byte boombuler reads as the GS1 FNC1 marker when a
// value starts with it: "è" in Latin-1.
const dataMatrixGS1 = 0xe8

func checkDataMatrix(s string) error {
	if _, err := latin1Scan(DataMatrix, s); err != nil {
		return err
	}
	if c, _ := latin1At(s, 0); c == dataMatrixGS1 {
		return apperr.New(apperr.Invalid, `DATAMATRIX cannot encode a value that starts with "è" (its encoder reads it as the GS1 marker)`)
	}
	// ASCII encodation: a pair of digits takes one codeword, any other
	// ASCII character one, a character above 127 two (Upper Shift).
	words, chars := 0, 0
	for i := 0; i < len(s); {
		c, n := latin1At(s, i)
		i += n
		chars++
		switch {
		case c >= '0' && c <= '9' && i < len(s) && s[i] >= '0' && s[i] <= '9':
			i++
			chars++
			words++
		case c >= 0x80:
			words += 2
		default:
			words++
		}
	}
	if words > dataMatrixMaxCodewords {
		return tooLong("too long for DATAMATRIX: %d characters take %d codewords, at most %d", chars, words, dataMatrixMaxCodewords)
	}
	return nil
}

// AZTEC

// aztecMaxBytes is the longest value AZTEC takes: the longest for which
// every content fits the largest symbol (32 layers, 19968 bits), however
// it compacts. The encoder's cost for n bytes is at most all of them in one
// binary shift, 8n+21 bits; bit stuffing adds at most one bit to every 11
// (12-bit codewords); error correction adds 33% + 11 bits. Text compacts
// better and would sometimes fit beyond this, but a limit that does not
// depend on the content is one a person can predict.
var aztecMaxBytes = func() int {
	const capacity = (112 + 16*32) * 32
	n := 0
	for {
		bits := 8*(n+1) + 21
		stuffed := 12 * ((bits + 10) / 11)
		if stuffed+bits*aztecECCPercent/100+11 > capacity {
			return n
		}
		n++
	}
}()

func checkAztec(s string) error {
	if _, err := latin1Scan(Aztec, s); err != nil {
		return err
	}
	n := utf8.RuneCountInString(s)
	if n > aztecMaxBytes {
		return tooLong("too long for AZTEC: %d characters, at most %d", n, aztecMaxBytes)
	}
	return nil
}
