package records

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// decodeFields decodes a record's stored fields: a JSON object of strings,
// as PostgreSQL writes jsonb. Every listed record goes through here, and
// encoding/json's reflection was most of the cost of reading a page, so
// the common case — valid UTF-8, no \u escapes — is read directly. Anything
// else is left to encoding/json, whose result (or error) stands; the two
// agree on everything the direct path accepts (FuzzDecodeFields).
func decodeFields(raw []byte) (map[string]string, error) {
	if m, ok := decodeFlatStrings(raw); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal(raw, &m)
	return m, err
}

// decodeFlatStrings reads {"key": "value", …} without \u escapes; ok is
// false for anything else. The JSON is copied into one string, and keys
// and values without escapes are slices of it: one allocation per record
// rather than two per field.
func decodeFlatStrings(raw []byte) (map[string]string, bool) {
	b := string(raw)
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	// Sized for the keys (a colon each; values may add a few): growing a
	// map rehashes it.
	m := make(map[string]string, min(strings.Count(b, ":"), 64))
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		value, next, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return nil, false
		}
		m[key] = value
		i = skipSpace(b, next)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// plainString reads a JSON string starting at b[i] that is valid UTF-8
// and has no \u escapes (PostgreSQL writes those only for rare control
// characters), returning it and the index after its closing quote.
func plainString(b string, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[start:j]
			if !ascii && !utf8.ValidString(s) {
				return "", 0, false
			}
			return s, j + 1, true
		case c == '\\':
			return escapedString(b, start, ascii)
		case c < 0x20:
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", 0, false
}

// escapedString finishes plainString for a string with escapes.
func escapedString(b string, start int, ascii bool) (string, int, bool) {
	out := make([]byte, 0, 64)
	for j := start; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(out) {
				return "", 0, false
			}
			return string(out), j + 1, true
		case c < 0x20:
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '\\':
			j++
			if j >= len(b) {
				return "", 0, false
			}
			switch b[j] {
			case '"', '\\', '/':
				c = b[j]
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			default:
				return "", 0, false
			}
		}
		out = append(out, c)
	}
	return "", 0, false
}

func skipSpace(b string, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
