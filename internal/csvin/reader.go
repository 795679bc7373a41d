package csvin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Default limits.
const (
	DefaultMaxColumns   = 2000
	DefaultMaxCellBytes = 64 << 10
	DefaultMaxRowBytes  = 1 << 20
)

const (
	bufSize    = 64 << 10 // read buffer
	sniffSize  = 16 << 10 // how much is looked at to detect the delimiter
	prefixSize = 512      // raw bytes looked at for BOM, binary formats, UTF-16
	minRead    = 4 << 10  // compact the buffer when less room is left
)

// Options control a Reader. The zero value reads a UTF-8 file with a
// detected delimiter, the header on the first non-blank line, and the
// default limits.
type Options struct {
	// Encoding of the file; EncodingAuto (""): UTF-8, with a leading
	// UTF-8 BOM stripped, or UTF-16 when the file starts with a UTF-16 BOM.
	// A byte-order mark always wins over the named encoding.
	Encoding Encoding
	// Delimiter between cells; 0 detects one of ',' ';' '\t' from the
	// first lines. It must be an ASCII character other than '"', CR, LF
	// and NUL.
	Delimiter rune
	// HeaderRow is the 1-based physical line of the header; the lines
	// before it are skipped unread (they only must be valid text in the
	// file's encoding). 0 means the first line that is not blank.
	HeaderRow int
	// MaxColumns bounds the number of cells in any row, the header
	// included; 0 means DefaultMaxColumns.
	MaxColumns int
	// MaxCellBytes bounds the size of one cell's text (after unquoting,
	// in UTF-8); 0 means DefaultMaxCellBytes.
	MaxCellBytes int
	// MaxRowBytes bounds the size of one row as it is in the file (after
	// transcoding to UTF-8), quotes, delimiters and embedded line breaks
	// included; 0 means DefaultMaxRowBytes.
	MaxRowBytes int
}

// Reader reads records from a CSV file. See the package documentation for
// the format it accepts. A Reader is not safe for concurrent use.
type Reader struct {
	src      io.Reader
	buf      []byte
	r        int   // next unread byte
	lim      int   // end of the validated (UTF-8, NUL-free) bytes
	w        int   // end of the bytes read into buf
	base     int64 // stream offset of buf[0]
	validate bool  // src is the raw file in UTF-8: validate it here
	offsets  bool  // stream offsets are file offsets
	eof      bool
	pend     *pending // problem at buf[lim], reported when parsing reaches it
	nulGuess Encoding
	binary   bool // the first bytes have control characters
	empty    int  // empty reads in a row

	line   int // physical line of buf[r]
	enc    Encoding
	delim  byte
	unq    [256]bool // bytes that end a run of unquoted text
	maxCol int
	maxCel int
	maxRow int

	// current record
	rowBuf  []byte
	ends    []int
	ncells  int
	rowLine int
	cells   []string
	sizeHit bool // the last error is a size limit

	header     []string
	headerLine int
	err        error // sticky
}

// quotedStop marks the bytes that end a run of quoted text.
var quotedStop = [256]bool{'"': true, '\n': true, '\r': true}

// NewReader prepares to read the CSV file r: it determines the encoding
// and the delimiter and reads the header. It keeps at most one read buffer
// (64 KiB) and one row in memory. Problems with the file are *Error values.
func NewReader(r io.Reader, opts Options) (*Reader, error) {
	if !opts.Encoding.known() {
		return nil, fmt.Errorf("csvin: unknown encoding %q", opts.Encoding)
	}
	if d := opts.Delimiter; d != 0 && (d >= utf8.RuneSelf || d == '"' || d == '\r' || d == '\n') {
		return nil, fmt.Errorf("csvin: delimiter %q not allowed: it must be an ASCII character other than '\"', CR and LF", d)
	}
	if opts.HeaderRow < 0 {
		return nil, fmt.Errorf("csvin: header row %d: must be 1 or more (or 0 for the first non-blank line)", opts.HeaderRow)
	}
	rd := &Reader{
		buf:    make([]byte, bufSize),
		line:   1,
		maxCol: orDefault(opts.MaxColumns, DefaultMaxColumns),
		maxCel: orDefault(opts.MaxCellBytes, DefaultMaxCellBytes),
		maxRow: orDefault(opts.MaxRowBytes, DefaultMaxRowBytes),
	}

	// Look at the first bytes as they are in the file.
	prefix := make([]byte, prefixSize)
	n, err := io.ReadFull(r, prefix)
	prefix = prefix[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("csvin: reading the file: %w", err)
	}
	atEOF := err != nil
	bomEnc, bomLen, err := sniffBOM(prefix)
	if err != nil {
		return nil, err
	}
	if bomLen == len(prefix) && atEOF {
		return nil, &Error{ByteOffset: -1, Reason: "the file is empty"}
	}
	enc := opts.Encoding
	switch {
	case bomEnc != "":
		enc = bomEnc
	case enc == EncodingAuto:
		enc = UTF8
	}
	rd.enc = enc
	if bomLen == 0 {
		if err := sniffBinary(prefix); err != nil {
			return nil, err
		}
		if enc == UTF16LE || enc == UTF16BE {
			if len(prefix) >= 4 && bytes.IndexByte(prefix, 0) < 0 && utf8.Valid(prefix) {
				return nil, &Error{ByteOffset: -1, Reason: fmt.Sprintf(
					"the file does not look like %s (it has no byte-order mark and no NUL bytes, and reads as UTF-8); leave the encoding unnamed or name the right one", enc)}
			}
		} else {
			rd.nulGuess = guessUTF16(prefix)
			rd.binary = rd.nulGuess == "" && hasBinaryControls(prefix)
		}
	}
	rest := prefix[bomLen:]
	if enc == UTF8 {
		rd.src = r
		rd.validate = true
		rd.offsets = true
		rd.base = int64(bomLen)
		rd.w = copy(rd.buf, rest)
		rd.eof = atEOF
		rd.validateNew()
	} else {
		rd.src = newDecoder(io.MultiReader(bytes.NewReader(rest), r), enc, int64(bomLen), rd.nulGuess)
	}

	if err := rd.skipPreamble(opts.HeaderRow); err != nil {
		return nil, err
	}
	sep := byte(0)
	if opts.HeaderRow == 0 {
		sep = rd.skipSepLine()
	}
	switch {
	case opts.Delimiter != 0:
		rd.delim = byte(opts.Delimiter)
	case sep != 0:
		rd.delim = sep
	default:
		for rd.lim-rd.r < sniffSize && rd.fill() {
		}
		rd.delim = detectDelimiter(rd.buf[rd.r:rd.lim], !rd.eof || rd.lim < rd.w)
	}
	rd.unq = [256]bool{'"': true, '\n': true, '\r': true}
	rd.unq[rd.delim] = true

	if err := rd.readHeader(opts.HeaderRow); err != nil {
		return nil, err
	}
	return rd, nil
}

// skipSepLine skips a first line "sep=X" (Excel's way to name the
// delimiter) and returns X, or returns 0 and skips nothing.
func (r *Reader) skipSepLine() byte {
	for r.lim-r.r < 7 && r.fill() {
	}
	b := r.buf[r.r:r.lim]
	if len(b) < 5 || !strings.EqualFold(string(b[:4]), "sep=") {
		return 0
	}
	d := b[4]
	if d >= utf8.RuneSelf || d == '"' || d == '\r' || d == '\n' {
		return 0
	}
	n := 5
	switch {
	case len(b) == 5 && r.eof && r.lim == r.w:
	case len(b) > 5 && b[5] == '\n':
		n++
	case len(b) > 5 && b[5] == '\r':
		n++
		if len(b) > 6 && b[6] == '\n' {
			n++
		}
	default:
		return 0
	}
	r.r += n
	r.line++
	return d
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Header returns the header's cells, trimmed of spaces (Unicode
// white space, byte-order marks and zero-width spaces). The caller may keep
// the slice but must not modify it.
func (r *Reader) Header() []string { return r.header }

// HeaderLine returns the physical line the header is on.
func (r *Reader) HeaderLine() int { return r.headerLine }

// Delimiter returns the delimiter in use, given or detected.
func (r *Reader) Delimiter() rune { return rune(r.delim) }

// Encoding returns the encoding in use: the one named in the Options, or
// the detected one (UTF-8 or, after a BOM, UTF-16LE/BE), never
// EncodingAuto.
func (r *Reader) Encoding() Encoding { return r.enc }

// Next returns the next data row: its cells and the 1-based physical line
// it starts on (lines of the original file, so a quoted cell that spans
// lines advances the count correctly). Rows whose cells are all empty or
// white space (blank lines, or just delimiters) are skipped. At the end of
// the file Next returns io.EOF.
//
// The cells are as in the file (not trimmed) and their number is whatever
// the row has: checking it against the header is the caller's job. The
// returned slice is reused by the next call to Next; the strings are not
// and stay valid (they share one allocation per row, so retaining one cell
// retains its row).
//
// Errors are final: after an error, Next returns the same error again.
// When the error is an *Error, line is its Line.
func (r *Reader) Next() (cells []string, line int, err error) {
	if r.err != nil {
		return nil, errLine(r.err), r.err
	}
	for {
		ok, err := r.readRecord(false)
		if err != nil {
			r.err = err
			return nil, errLine(err), err
		}
		if !ok {
			r.err = io.EOF
			return nil, 0, io.EOF
		}
		if r.blank() {
			continue
		}
		return r.makeCells(), r.rowLine, nil
	}
}

func errLine(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

// skipPreamble skips the lines before headerRow.
func (r *Reader) skipPreamble(headerRow int) error {
	partial := false // bytes read since the last line break
	for r.line < headerRow {
		if r.r == r.lim && !r.fill() {
			if err := r.pendErr(0); err != nil {
				return err
			}
			lines := r.line - 1
			if partial {
				lines++
			}
			return &Error{ByteOffset: -1, Reason: fmt.Sprintf(
				"the header should be on line %d, but the file has only %d lines", headerRow, lines)}
		}
		seg := r.buf[r.r:r.lim]
		i := 0
		for i < len(seg) && seg[i] != '\n' && seg[i] != '\r' {
			i++
		}
		r.r += i
		if i > 0 {
			partial = true
		}
		if i < len(seg) {
			partial = false
			r.r++
			r.line++
			if seg[i] == '\r' && r.peek() == '\n' {
				r.r++
			}
		}
	}
	return nil
}

func (r *Reader) readHeader(headerRow int) error {
	for {
		ok, err := r.readRecord(true)
		if err != nil {
			return err
		}
		if !ok {
			if headerRow > 0 {
				return &Error{ByteOffset: -1, Reason: fmt.Sprintf(
					"the header should be on line %d, but the file has only %d lines", headerRow, headerRow-1)}
			}
			return &Error{ByteOffset: -1, Reason: "the file has no header row: it contains only blank lines"}
		}
		if r.ncells == 1 && r.blank() {
			if headerRow > 0 {
				return &Error{Line: r.rowLine, ByteOffset: -1, Reason: "the header row is blank"}
			}
			continue
		}
		break
	}
	r.headerLine = r.rowLine
	cells := r.makeCells()
	r.header = make([]string, len(cells))
	named := false
	seen := make(map[string]int, len(cells))
	for i, c := range cells {
		c = strings.TrimFunc(c, isTrimmed)
		r.header[i] = c
		if c == "" {
			continue
		}
		named = true
		key := strings.ToLower(norm.NFC.String(c))
		if j, dup := seen[key]; dup {
			reason := fmt.Sprintf("column %d %q repeats column %d", i+1, c, j+1)
			if r.header[j] != c {
				reason += fmt.Sprintf(" (%q)", r.header[j])
			}
			return &Error{Line: r.headerLine, ByteOffset: -1, Reason: reason}
		}
		seen[key] = i
	}
	if !named {
		return &Error{Line: r.headerLine, ByteOffset: -1, Reason: "the header row has no column names"}
	}
	return nil
}

func isTrimmed(c rune) bool {
	return unicode.IsSpace(c) || c == '\uFEFF' || c == '\u200B'
}

// blank reports whether the current record has only empty or white-space
// cells.
func (r *Reader) blank() bool {
	b := r.rowBuf
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch c {
			case ' ', '\t', '\n', '\r', '\v', '\f':
				i++
				continue
			}
			return false
		}
		rn, size := utf8.DecodeRune(b[i:])
		if !isTrimmed(rn) {
			return false
		}
		i += size
	}
	return true
}

// makeCells turns the current record into strings sharing one allocation.
func (r *Reader) makeCells() []string {
	s := string(r.rowBuf)
	cells := r.cells[:0]
	start := 0
	for _, end := range r.ends {
		cells = append(cells, s[start:end])
		start = end
	}
	r.cells = cells
	return cells
}

// offset returns the file offset of buf[i], or -1 when stream offsets are
// not file offsets (transcoded input).
func (r *Reader) offset(i int) int64 {
	if !r.offsets {
		return -1
	}
	return r.base + int64(i)
}

// fill reads more input. It reports whether new validated bytes are
// available at buf[lim]; false means the end of the input or a pending
// problem.
func (r *Reader) fill() bool {
	for {
		if r.pend != nil || (r.eof && r.lim == r.w) {
			return false
		}
		if len(r.buf)-r.w < minRead {
			if r.r == 0 {
				return false // the buffer is full (only while sniffing)
			}
			n := copy(r.buf, r.buf[r.r:r.w])
			r.base += int64(r.r)
			r.lim -= r.r
			r.w = n
			r.r = 0
		}
		old := r.lim
		n, err := 0, error(nil)
		if !r.eof {
			n, err = r.src.Read(r.buf[r.w:])
			r.w += n
		}
		switch {
		case err == nil:
		case err == io.EOF:
			r.eof = true
		default:
			var p *pending
			if errors.As(err, &p) {
				r.pend = p
			} else {
				r.pend = &pending{ioErr: err}
			}
		}
		if r.validate {
			r.validateNew()
		} else {
			r.lim = r.w
		}
		if r.lim > old {
			r.empty = 0
			return true
		}
		if n == 0 && err == nil {
			r.empty++
			if r.empty >= 100 {
				r.pend = &pending{ioErr: errNoProgress}
			}
		}
	}
}

// validateNew checks buf[lim:w] for invalid UTF-8 and NUL bytes and moves
// lim past the good bytes. An incomplete character at the end is held
// back until more input arrives (or the input ends).
func (r *Reader) validateNew() {
	b := r.buf[r.lim:r.w]
	end := len(b)
	if !r.eof {
		end = completePrefix(b)
	}
	chunk := b[:end]
	if bytes.IndexByte(chunk, 0) < 0 && utf8.Valid(chunk) {
		r.lim += end
		return
	}
	i := 0
	for i < len(chunk) {
		c := chunk[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				break
			}
			i++
			continue
		}
		_, size := utf8.DecodeRune(chunk[i:])
		if size == 1 {
			break
		}
		i += size
	}
	off := r.base + int64(r.lim+i)
	c := chunk[i]
	reason := nulReason(off, r.nulGuess)
	switch {
	case c != 0 && r.binary:
		reason = fmt.Sprintf("invalid UTF-8 at byte %d (0x%02X); the file has control characters at its start and looks binary, not like CSV text", off, c)
	case c != 0:
		reason = fmt.Sprintf("invalid UTF-8 at byte %d (0x%02X); name the file's encoding (e.g. WINDOWS-1252) to transcode it", off, c)
	}
	r.lim += i
	if r.pend == nil || r.pend.ioErr != nil {
		r.pend = &pending{offset: off, reason: reason}
	}
}

// completePrefix returns the length of b without an incomplete UTF-8
// sequence at its end.
func completePrefix(b []byte) int {
	n := len(b)
	for i := n - 1; i >= 0 && i >= n-utf8.UTFMax+1; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return n
		}
		if c >= 0xC0 {
			if utf8.FullRune(b[i:]) {
				return n
			}
			return i
		}
	}
	return n
}

// peek returns the next byte without consuming it, 0 at the end of the
// (valid) input.
func (r *Reader) peek() byte {
	if r.r == r.lim && !r.fill() {
		return 0
	}
	return r.buf[r.r]
}

// pendErr returns the pending problem as an error at the current position,
// nil at a clean end of input.
func (r *Reader) pendErr(column int) error {
	p := r.pend
	if p == nil {
		return nil
	}
	if p.ioErr != nil {
		return fmt.Errorf("csvin: reading line %d: %w", r.line, p.ioErr)
	}
	return &Error{Line: r.line, Column: column, ByteOffset: p.offset, Reason: p.reason}
}

// Field terminators.
const (
	endDelim = iota
	endLine
	endFile
)

// readRecord reads one record into rowBuf/ends. It returns false at the
// end of the input.
func (r *Reader) readRecord(header bool) (bool, error) {
	r.rowBuf = r.rowBuf[:0]
	r.ends = r.ends[:0]
	r.ncells = 0
	if r.r == r.lim && !r.fill() {
		return false, r.pendErr(1)
	}
	r.rowLine = r.line
	rowStart := r.base + int64(r.r)
	r.sizeHit = false
	for {
		over := r.ncells >= r.maxCol
		r.ncells++
		end, err := r.readField(over, rowStart)
		if err != nil {
			if over && r.sizeHit {
				return false, r.tooManyCells(header, rowStart, true)
			}
			return false, err
		}
		if !over {
			r.ends = append(r.ends, len(r.rowBuf))
		}
		if end != endDelim {
			break
		}
	}
	if r.ncells > r.maxCol {
		return false, r.tooManyCells(header, rowStart, false)
	}
	return true, nil
}

func (r *Reader) tooManyCells(header bool, rowStart int64, atLeast bool) error {
	more := ""
	if atLeast {
		more = "at least "
	}
	off := int64(-1)
	if r.offsets {
		off = rowStart
	}
	if header {
		return &Error{Line: r.rowLine, ByteOffset: off, Reason: fmt.Sprintf(
			"the header has %s%d columns, at most %d allowed", more, r.ncells, r.maxCol)}
	}
	return &Error{Line: r.rowLine, ByteOffset: off, Reason: fmt.Sprintf(
		"the row has %s%d cells, at most %d allowed", more, r.ncells, r.maxCol)}
}

// readField reads one cell, appending its text to rowBuf unless discard.
func (r *Reader) readField(discard bool, rowStart int64) (int, error) {
	if r.r == r.lim && !r.fill() {
		return endFile, r.pendErr(r.ncells)
	}
	cellStart := len(r.rowBuf)
	cellOff := r.offset(r.r)
	if r.buf[r.r] == '"' {
		return r.readQuoted(discard, cellStart, cellOff, rowStart)
	}
	stop := &r.unq
	for {
		seg := r.buf[r.r:r.lim]
		i := 0
		for i < len(seg) && !stop[seg[i]] {
			i++
		}
		if !discard {
			r.rowBuf = append(r.rowBuf, seg[:i]...)
		}
		r.r += i
		if err := r.checkSize(cellStart, cellOff, r.line, false, rowStart); err != nil {
			return 0, err
		}
		if i == len(seg) {
			if !r.fill() {
				return endFile, r.pendErr(r.ncells)
			}
			continue
		}
		r.r++
		switch c := seg[i]; c {
		case '"': // a bare quote inside an unquoted cell is kept as it is
			if !discard {
				r.rowBuf = append(r.rowBuf, '"')
			}
		case '\n':
			r.line++
			return endLine, nil
		case '\r':
			r.line++
			if r.peek() == '\n' {
				r.r++
			}
			return endLine, nil
		default: // the delimiter
			return endDelim, nil
		}
	}
}

// checkSize enforces MaxCellBytes and MaxRowBytes for the cell that
// starts at rowBuf[cellStart], file offset cellOff, on line cellLine.
// quoted says whether it is a quoted cell.
func (r *Reader) checkSize(cellStart int, cellOff int64, cellLine int, quoted bool, rowStart int64) error {
	if len(r.rowBuf)-cellStart > r.maxCel {
		reason := fmt.Sprintf("the cell is longer than %d bytes, the most allowed", r.maxCel)
		if quoted && cellLine < r.line {
			reason += "; perhaps its opening quote lacks a closing quote"
		}
		r.sizeHit = true
		return &Error{Line: cellLine, Column: r.ncells, ByteOffset: cellOff, Reason: reason}
	}
	if r.base+int64(r.r)-rowStart > int64(r.maxRow) {
		reason := fmt.Sprintf("the row is longer than %d bytes, the most allowed", r.maxRow)
		if quoted && cellLine < r.line {
			reason += fmt.Sprintf("; perhaps the quote that opens column %d on line %d lacks a closing quote", r.ncells, cellLine)
		}
		off := int64(-1)
		if r.offsets {
			off = rowStart
		}
		r.sizeHit = true
		return &Error{Line: r.rowLine, Column: r.ncells, ByteOffset: off, Reason: reason}
	}
	return nil
}

func (r *Reader) readQuoted(discard bool, cellStart int, quoteOff int64, rowStart int64) (int, error) {
	quoteLine := r.line
	r.r++
	for {
		seg := r.buf[r.r:r.lim]
		i := 0
		for i < len(seg) && !quotedStop[seg[i]] {
			i++
		}
		if !discard {
			r.rowBuf = append(r.rowBuf, seg[:i]...)
		}
		r.r += i
		if err := r.checkSize(cellStart, quoteOff, quoteLine, true, rowStart); err != nil {
			return 0, err
		}
		if i == len(seg) {
			if !r.fill() {
				if err := r.pendErr(r.ncells); err != nil {
					return 0, err
				}
				return 0, &Error{Line: quoteLine, Column: r.ncells, ByteOffset: quoteOff,
					Reason: "the quote that opens this cell is never closed (the file ends inside it)"}
			}
			continue
		}
		r.r++
		switch seg[i] {
		case '"':
			if r.peek() == '"' {
				r.r++
				if !discard {
					r.rowBuf = append(r.rowBuf, '"')
				}
				continue
			}
			return r.afterQuote()
		case '\n':
			r.line++
			if !discard {
				r.rowBuf = append(r.rowBuf, '\n')
			}
		case '\r':
			r.line++
			if r.peek() == '\n' {
				r.r++
			}
			if !discard {
				r.rowBuf = append(r.rowBuf, '\n')
			}
		}
	}
}

// afterQuote reads what follows a closing quote: spaces (ignored), then
// the delimiter, a line break or the end of the input.
func (r *Reader) afterQuote() (int, error) {
	for {
		if r.r == r.lim && !r.fill() {
			return endFile, r.pendErr(r.ncells)
		}
		c := r.buf[r.r]
		switch {
		case c == r.delim:
			r.r++
			return endDelim, nil
		case c == ' ':
			r.r++
		case c == '\n':
			r.r++
			r.line++
			return endLine, nil
		case c == '\r':
			r.r++
			r.line++
			if r.peek() == '\n' {
				r.r++
			}
			return endLine, nil
		default:
			rn, _ := utf8.DecodeRune(r.buf[r.r:r.lim])
			return 0, &Error{Line: r.line, Column: r.ncells, ByteOffset: r.offset(r.r), Reason: fmt.Sprintf(
				"unexpected %q after the closing quote of the cell; a quote inside a quoted cell must be doubled (\"\")", rn)}
		}
	}
}
