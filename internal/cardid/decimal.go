package cardid

import "fmt"

// maxDecimalDigits is the longest DECIMAL canonical form; every uint64 fits.
const maxDecimalDigits = 20

func readDecimal(input string) (canonical, explanation, reason string) {
	s, off := trim(input)
	if s == "" {
		return "", "", "is empty"
	}
	if i := firstNonDigit(s); i >= 0 {
		return "", "", badChar(input, off+i, "only digits 0-9 allowed")
	}
	canonical = stripZeros(s)
	if len(canonical) > maxDecimalDigits {
		return "", "", fmt.Sprintf("has %d digits, at most %d allowed", len(canonical), maxDecimalDigits)
	}
	explanation = "decimal " + s
	if canonical != s {
		explanation += " read as " + canonical + " (leading zeros removed)"
	}
	return canonical, explanation, ""
}
