package csvin

import (
	"strconv"
	"strings"
)

// Error is a problem with the content of a CSV file: its encoding, its
// quoting, its size limits or its header. Every error the Reader finds in
// the file is an *Error; failures of the underlying io.Reader are returned
// wrapped, not as *Error.
type Error struct {
	// Line is the 1-based physical line of the file where the problem is,
	// 0 when it concerns the file as a whole (e.g. "the file is empty").
	Line int
	// Column is the 1-based cell position within the row, 0 if it does
	// not apply.
	Column int
	// ByteOffset is the 0-based offset of the offending byte from the
	// start of the file (a byte-order mark included), -1 if it does not
	// apply or is not known (see the package documentation).
	ByteOffset int64
	// Reason says what is wrong, for a person, without the position
	// prefix.
	Reason string
}

// Error returns the position and the reason, e.g.
//
//	line 12, column 3: invalid UTF-8 at byte 1234 (0xE9); name the file's encoding (e.g. WINDOWS-1252) to transcode it
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Column > 0 {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("column ")
		b.WriteString(strconv.Itoa(e.Column))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}
