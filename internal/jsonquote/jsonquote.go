// Package jsonquote appends strings as JSON, exactly as encoding/json
// writes them, without its reflection in the common case: identifiers,
// cursors and the like are short printable ASCII with nothing to escape.
package jsonquote

import "encoding/json"

// Append appends s quoted as encoding/json.Marshal quotes it (HTML-safe):
// as is when s is printable ASCII with nothing to escape, through
// encoding/json otherwise.
func Append(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
