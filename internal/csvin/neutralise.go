package csvin

// Spreadsheet formula injection (CSV injection): a cell that starts with
// '=', '+', '-', '@', a tab or a carriage return may be run as a formula
// when the file is opened in a spreadsheet. The Reader returns such cells
// verbatim; an exporter should write them through Neutralise, which
// prefixes a single quote as OWASP recommends, and an importer can undo
// that with Unneutralise. NUL bytes, the last character OWASP lists, never
// reach a cell: the Reader refuses them.

// isFormulaStart reports whether c makes a spreadsheet read a cell as a
// formula.
func isFormulaStart(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// needsQuote reports whether cell starts with a formula character, or with
// single quotes followed by one (so that Unneutralise(Neutralise(s)) == s
// for every s, even a value that itself starts with "'=").
func needsQuote(cell string) bool {
	for i := 0; i < len(cell); i++ {
		if cell[i] != '\'' {
			return isFormulaStart(cell[i])
		}
	}
	return false
}

// Neutralise makes cell safe to open in a spreadsheet: when it starts with
// '=', '+', '-', '@', a tab or a carriage return (possibly after single
// quotes), it returns it with a single quote in front; any other cell is
// returned as it is.
//
//	"=SUM(A1:A9)" -> "'=SUM(A1:A9)"    "-5" -> "'-5"    "'=x" -> "''=x"    "Ada" -> "Ada"
func Neutralise(cell string) string {
	if needsQuote(cell) {
		return "'" + cell
	}
	return cell
}

// Unneutralise undoes Neutralise: it strips one leading single quote when
// what follows starts with '=', '+', '-', '@', a tab or a carriage return
// (possibly after more single quotes). Other cells, including "'abc" or a
// lone "'", are returned as they are. Unneutralise(Neutralise(s)) == s.
func Unneutralise(cell string) string {
	if len(cell) > 1 && cell[0] == '\'' && needsQuote(cell[1:]) {
		return cell[1:]
	}
	return cell
}
