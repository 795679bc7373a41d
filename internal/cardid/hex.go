package cardid

import (
	"fmt"
	"strings"
)

// maxHexDigits is the most hex digits accepted: 16 bytes.
const maxHexDigits = 32

const hexAllowed = "only hex digits 0-9 A-F and byte separators ':' '-' ' ' allowed"

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isHexSeparator(c byte) bool { return c == ':' || c == '-' || c == ' ' }

// scanHex reads HEX input and returns the trimmed input as written and its
// digits in uppercase, padded on the left to whole bytes.
func scanHex(input string) (written, digits string, padded bool, reason string) {
	s, off := trim(input)
	if s == "" {
		return "", "", false, "is empty"
	}
	body, boff := s, off
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		body, boff = s[2:], off+2
		if body == "" {
			return "", "", false, "has no hex digits after the " + s[:2] + " prefix"
		}
	}
	var (
		b          strings.Builder
		sep        byte // the separator in use, 0 before the first one
		groupStart = 0  // byte offset in body of the current group
	)
	// checkGroup rejects the group body[groupStart:end] if it does not hold
	// whole bytes; it is only called once a separator has been seen.
	checkGroup := func(end int) string {
		if (end-groupStart)%2 != 0 {
			return fmt.Sprintf("byte group %q at position %d has an odd number of hex digits, separators must fall between whole bytes",
				body[groupStart:end], position(input, boff+groupStart))
		}
		return ""
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case isHexDigit(c):
			if 'a' <= c && c <= 'f' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
		case isHexSeparator(c):
			if sep != 0 && c != sep {
				return "", "", false, fmt.Sprintf("mixes byte separators %q and %q (at position %d), use one kind",
					sep, c, position(input, boff+i))
			}
			if i == groupStart || i == len(body)-1 {
				return "", "", false, fmt.Sprintf("separator %q at position %d is not between two bytes", c, position(input, boff+i))
			}
			if r := checkGroup(i); r != "" {
				return "", "", false, r
			}
			sep, groupStart = c, i+1
		default:
			return "", "", false, badChar(input, boff+i, hexAllowed)
		}
	}
	if sep != 0 {
		if r := checkGroup(len(body)); r != "" {
			return "", "", false, r
		}
	}
	digits = b.String()
	if len(digits) > maxHexDigits {
		return "", "", false, fmt.Sprintf("has %d hex digits, at most %d allowed (16 bytes)", len(digits), maxHexDigits)
	}
	if len(digits)%2 != 0 {
		digits, padded = "0"+digits, true
	}
	return s, digits, padded, ""
}

// stripZeroBytes removes leading "00" bytes, keeping at least one byte.
func stripZeroBytes(digits string) string {
	for len(digits) > 2 && digits[:2] == "00" {
		digits = digits[2:]
	}
	return digits
}

// reverseBytes reverses the byte order of an even-length hex digit string.
func reverseBytes(digits string) string {
	out := make([]byte, 0, len(digits))
	for i := len(digits) - 2; i >= 0; i -= 2 {
		out = append(out, digits[i], digits[i+1])
	}
	return string(out)
}

func readHex(input string, reversed bool) (canonical, explanation, reason string) {
	written, digits, padded, reason := scanHex(input)
	if reason != "" {
		return "", "", reason
	}
	verb := "read as"
	if reversed {
		digits, verb = reverseBytes(digits), "read byte-reversed as"
	}
	canonical = stripZeroBytes(digits)
	var notes []string
	if padded {
		notes = append(notes, "padded to whole bytes")
	}
	if canonical != digits {
		notes = append(notes, "leading zero bytes removed")
	}
	explanation = "hex " + written
	if reversed || canonical != written {
		explanation += " " + verb + " " + canonical
	}
	if len(notes) > 0 {
		explanation += " (" + strings.Join(notes, ", ") + ")"
	}
	return canonical, explanation, ""
}
