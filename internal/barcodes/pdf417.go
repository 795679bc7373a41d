package barcodes

import (
	"math/big"
	"unicode/utf8"
)

// PDF417's capacity depends on how the encoder compacts the value, so Check
// counts the codewords boombuler's high-level encoder would emit, with the
// same segmentation rules, without building them:
//
//   - a run of 13 or more digits, or digits up to the end, is numeric
//     compaction: a latch, then every 44 digits (or fewer, at the end) as
//     one big number in base 900;
//   - else a run of 5 or more text characters (tab, LF, CR, ' '..'~'), or
//     text up to the end, is text compaction: two values of 30 per codeword,
//     with the latches and shifts between its upper, lower, mixed and
//     punctuation sub-modes;
//   - else bytes, up to where 13 digits or 6 text characters begin, are byte
//     compaction: a latch (or a shift, for one byte within text), five
//     codewords per six bytes and one per remaining byte.

// pdf417MaxCodewords is the data capacity boombuler allows: at most 30
// rows of 30 columns, less the length codeword and the 16 error correction
// codewords of level 3.
const pdf417MaxCodewords = 30*30 - 1 - 2<<pdf417Level

const (
	pdfNumericMin   = 13 // digits that make the encoder switch to numeric
	pdfNumericChunk = 44 // digits per base-900 number
)

// pdfNumericWords[n] is how many codewords n digits take in one chunk: the
// base-900 digits of the number "1" followed by the n digits, which has as
// many as 10^n does (no power of 900 lies in [10^n, 2·10^n) for n ≤ 44).
var pdfNumericWords = func() (t [pdfNumericChunk + 1]int) {
	n := big.NewInt(1)
	ten, nine100 := big.NewInt(10), big.NewInt(900)
	for d := 1; d <= pdfNumericChunk; d++ {
		n.Mul(n, ten)
		for p := new(big.Int).Set(nine100); p.Cmp(n) <= 0; p.Mul(p, nine100) {
			t[d]++
		}
		t[d]++
	}
	return t
}()

type pdfSubMode uint8

const (
	pdfUpper pdfSubMode = iota
	pdfLower
	pdfMixed
	pdfPunct
)

// Character classes of text compaction.
const (
	pdfText = 1 << iota
	pdfAlphaUpper
	pdfAlphaLower
	pdfMixedChar
	pdfPunctChar
)

var pdfClass = func() (t [256]uint8) {
	for _, c := range "\t\n\r" {
		t[c] |= pdfText
	}
	for c := ' '; c <= '~'; c++ {
		t[c] |= pdfText
	}
	t[' '] |= pdfAlphaUpper | pdfAlphaLower
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= pdfAlphaUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= pdfAlphaLower
	}
	for _, c := range "0123456789&\r\t,:#-.$/+%*=^ " {
		t[c] |= pdfMixedChar
	}
	for _, c := range ";<>@[\\]_`~!\r\t,:\n-.$/\"|*()?{}'" {
		t[c] |= pdfPunctChar
	}
	return t
}()

func checkPDF417(s string) error {
	ascii, err := latin1Scan(PDF417, s)
	if err != nil {
		return err
	}
	var words int
	if ascii {
		words = pdf417Codewords(s)
	} else {
		var buf [256]byte
		b := buf[:0]
		for _, r := range s {
			b = append(b, byte(r))
		}
		words = pdf417Codewords(b)
	}
	if words > pdf417MaxCodewords {
		return tooLong("too long for PDF417: %d characters take %d codewords, at most %d", utf8.RuneCountInString(s), words, pdf417MaxCodewords)
	}
	return nil
}

// latin1Bytes is Latin-1 text, held in a string or in a byte slice.
type latin1Bytes interface{ ~string | ~[]byte }

// pdf417Codewords counts the data codewords boombuler emits for the
// Latin-1 bytes b.
func pdf417Codewords[T latin1Bytes](b T) int {
	const (
		modeText = iota
		modeNumeric
		modeByte
	)
	mode, sub, words := modeText, pdfUpper, 0
	for p := 0; p < len(b); {
		if d := pdfDigitRun(b, p); d >= pdfNumericMin || d == len(b)-p {
			words++ // latch to numeric
			for ; d > pdfNumericChunk; d -= pdfNumericChunk {
				words += pdfNumericWords[pdfNumericChunk]
				p += pdfNumericChunk
			}
			words += pdfNumericWords[d]
			p += d
			mode, sub = modeNumeric, pdfUpper
			continue
		}
		if t := pdfTextRun(b, p, len(b)); t >= 5 || t == len(b)-p {
			if mode != modeText {
				words++ // latch to text
				mode, sub = modeText, pdfUpper
			}
			var values int
			sub, values = pdfTextValues(b[p:p+t], sub)
			words += (values + 1) / 2
			p += t
			continue
		}
		n := pdfByteRun(b, p)
		if n != 1 || mode != modeText {
			mode, sub = modeByte, pdfUpper
		}
		words += 1 + n/6*5 + n%6 // latch or shift, six bytes in five, the rest one each
		p += n
	}
	return words
}

func pdfDigitRun[T latin1Bytes](b T, p int) int {
	i := p
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i - p
}

// pdfTextRun is the length of the text from p, ending at a character that
// is not text or where 13 digits begin; it stops counting at limit.
func pdfTextRun[T latin1Bytes](b T, p, limit int) int {
	i := p
	for i < len(b) && i-p < limit {
		c := b[i]
		if c >= '0' && c <= '9' {
			d := pdfDigitRun(b, i)
			if d >= pdfNumericMin {
				break
			}
			i += d
			continue
		}
		if pdfClass[c]&pdfText == 0 {
			break
		}
		i++
	}
	return min(i-p, limit)
}

// pdfByteRun is how many bytes from p go into byte compaction: up to where
// 13 digits or more than 5 text characters begin.
func pdfByteRun[T latin1Bytes](b T, p int) int {
	i := p
	for i < len(b) && pdfDigitRun(b, i) < pdfNumericMin && pdfTextRun(b, i, 6) <= 5 {
		i++
	}
	return i - p
}

// pdfTextValues counts the base-30 values text compaction emits for text,
// starting in sub-mode sub, and returns the sub-mode it ends in.
func pdfTextValues[T latin1Bytes](text T, sub pdfSubMode) (pdfSubMode, int) {
	values := 0
	for i := 0; i < len(text); {
		cls := pdfClass[text[i]]
		switch sub {
		case pdfUpper:
			switch {
			case cls&pdfAlphaUpper != 0:
				values++
			case cls&pdfAlphaLower != 0:
				sub, values = pdfLower, values+1 // latch
				continue
			case cls&pdfMixedChar != 0:
				sub, values = pdfMixed, values+1 // latch
				continue
			default:
				values += 2 // punctuation shift and the character
			}
		case pdfLower:
			switch {
			case cls&pdfAlphaLower != 0:
				values++
			case cls&pdfAlphaUpper != 0:
				values += 2 // upper shift and the letter
			case cls&pdfMixedChar != 0:
				sub, values = pdfMixed, values+1
				continue
			default:
				values += 2
			}
		case pdfMixed:
			switch {
			case cls&pdfMixedChar != 0:
				values++
			case cls&pdfAlphaUpper != 0:
				sub, values = pdfUpper, values+1
				continue
			case cls&pdfAlphaLower != 0:
				sub, values = pdfLower, values+1
				continue
			case i+1 < len(text) && pdfClass[text[i+1]]&pdfPunctChar != 0:
				sub, values = pdfPunct, values+1 // latch: more punctuation follows
				continue
			default:
				values += 2
			}
		default: // pdfPunct
			if cls&pdfPunctChar == 0 {
				sub, values = pdfUpper, values+1
				continue
			}
			values++
		}
		i++
	}
	return sub, values
}
