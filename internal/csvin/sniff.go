package csvin

// delimiterCandidates are the delimiters detection chooses from, in order
// of preference when the evidence is equal.
var delimiterCandidates = [...]byte{',', ';', '\t'}

// sniffRecords is how many records delimiter detection looks at.
const sniffRecords = 20

// detectDelimiter picks the delimiter of the records at the start of data
// (the header first). For each candidate it counts the delimiters outside
// quotes in each record; candidates absent from the header are out. The
// winner is the candidate whose count in the most records equals its
// count in the header, then the one splitting the header into more
// columns, then the first in delimiterCandidates. With no candidate in the
// header (a single column), it is ','. truncated says that data ends
// before the input does, so its last record may be incomplete.
func detectDelimiter(data []byte, truncated bool) byte {
	best, bestSame, bestCount, bestTotal := byte(','), 0, 0, 1
	var counts [sniffRecords]int
	for _, d := range delimiterCandidates {
		n := countDelimiters(data, d, truncated, &counts)
		if n == 0 || counts[0] == 0 {
			continue
		}
		same := 0
		for _, c := range counts[:n] {
			if c == counts[0] {
				same++
			}
		}
		// same/n > bestSame/bestTotal, without floating point
		better := same*bestTotal - bestSame*n
		if better > 0 || (better == 0 && counts[0] > bestCount) {
			best, bestSame, bestCount, bestTotal = d, same, counts[0], n
		}
	}
	return best
}

// countDelimiters stores in counts the number of d outside quotes in each
// non-blank record of data and returns the number of records counted.
func countDelimiters(data []byte, d byte, truncated bool, counts *[sniffRecords]int) int {
	n, count := 0, 0
	fieldStart, inQuote, content := true, false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inQuote {
			if c == '"' {
				if i+1 < len(data) && data[i+1] == '"' {
					i++
				} else {
					inQuote = false
				}
			}
			continue
		}
		switch c {
		case d:
			count++
			fieldStart, content = true, true
		case '"':
			inQuote = fieldStart
			fieldStart, content = false, true
		case '\n', '\r':
			if content {
				counts[n] = count
				n++
				if n == len(counts) {
					return n
				}
			}
			count = 0
			fieldStart, content = true, false
		default:
			fieldStart, content = false, true
		}
	}
	if content && (!truncated || n == 0) {
		counts[n] = count
		n++
	}
	return n
}
