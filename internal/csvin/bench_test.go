package csvin_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/lintel/lintel/internal/csvin"
)

const benchRows = 100_000

// benchFile returns a CSV file with a header and benchRows rows of 10 short
// columns.
func benchFile(quoted bool) []byte {
	var b bytes.Buffer
	b.WriteString("card_id,first_name,last_name,email,phone,country,valid_from,expires_at,barcode,department\n")
	q := ""
	if quoted {
		q = `"`
	}
	for i := range benchRows {
		fmt.Fprintf(&b, "%[2]s%07[1]d%[2]s,%[2]sAda%[2]s,%[2]sLovelace%[2]s,%[2]sada%[1]d@example.com%[2]s,%[2]s+41791234567%[2]s,%[2]sCH%[2]s,%[2]s2024-01-01%[2]s,%[2]s2026-12-31%[2]s,%[2]sBC%06[1]d%[2]s,%[2]sstaff%[2]s\n", i, q)
	}
	return b.Bytes()
}

func benchRead(b *testing.B, data []byte, opts csvin.Options) {
	b.SetBytes(int64(len(data)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		rd, err := csvin.NewReader(bytes.NewReader(data), opts)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			cells, _, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if len(cells) != 10 {
				b.Fatalf("%d cells", len(cells))
			}
			n++
		}
		if n != benchRows {
			b.Fatalf("%d rows", n)
		}
	}
	runtime.ReadMemStats(&after)
	rows := float64(b.N) * benchRows
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/rows, "allocs/row")
}

// BenchmarkReader reads 100,000 rows of 10 short columns (UTF-8).
func BenchmarkReader(b *testing.B) {
	benchRead(b, benchFile(false), csvin.Options{})
}

// BenchmarkReaderQuoted reads the same rows with every cell quoted.
func BenchmarkReaderQuoted(b *testing.B) {
	benchRead(b, benchFile(true), csvin.Options{})
}

// BenchmarkReaderWindows1252 reads the same rows transcoding them.
func BenchmarkReaderWindows1252(b *testing.B) {
	benchRead(b, benchFile(false), csvin.Options{Encoding: csvin.Windows1252})
}

// BenchmarkEncodingCSV reads the same rows with encoding/csv, for comparison.
func BenchmarkEncodingCSV(b *testing.B) {
	data := benchFile(false)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		cr := csv.NewReader(bytes.NewReader(data))
		cr.ReuseRecord = true
		cr.FieldsPerRecord = -1
		for {
			_, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*(benchRows+1)), "ns/row")
}
