package barcodes

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	zaztec "github.com/makiuchi-d/gozxing/aztec"
	zdatamatrix "github.com/makiuchi-d/gozxing/datamatrix"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/apperr"
)

// scan reads a rendered PNG back the way a phone's scanner library would.
// gozxing v0.1.1 has readers for QR, CODE128, DATAMATRIX and AZTEC, not for
// PDF417.
func scan(t *testing.T, symbology string, pngBytes []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngBytes))
	require.NoError(t, err)
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	require.NoError(t, err)
	var reader gozxing.Reader
	switch symbology {
	case QR:
		reader = qrcode.NewQRCodeReader()
	case Code128:
		reader = oned.NewCode128Reader()
	case DataMatrix:
		reader = zdatamatrix.NewDataMatrixReader()
	case Aztec:
		reader = zaztec.NewAztecReader()
	default:
		t.Fatalf("no reader for %s", symbology)
	}
	res, err := reader.Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	require.NoError(t, err, "%s does not scan", symbology)
	text := res.GetText()
	if symbology == DataMatrix && !utf8.ValidString(text) {
		// gozxing hands DATAMATRIX's ISO-8859-1 bytes over as they are.
		var b strings.Builder
		for i := 0; i < len(text); i++ {
			b.WriteRune(rune(text[i]))
		}
		text = b.String()
	}
	return text
}

func TestRenderedCodesScanBackToTheirValue(t *testing.T) {
	t.Parallel()
	values := map[string][]string{
		QR:         {"12345678", "+12345", "-0", "EMP-0042/ZH", "Zoë Müller, 山田 😀", "https://lintel.example/c/8f14e45f?x=1&y=2", strings.Repeat("9", 700)},
		Code128:    {"12345678", "EMP-0042", "lower case + {braces}", "A1B2C3d4e5f6g7h8i9"},
		DataMatrix: {"12345678", "EMP-0042/ZH", "Zoë Müller", strings.Repeat("Card 0042 ", 40)},
		Aztec:      {"12345678", "EMP-0042/ZH", "Zoë Müller", "mixed CASE, digits 0123456789 and: punctuation!", strings.Repeat("Ab1,", 100)},
	}
	for sym, vs := range values {
		for _, v := range vs {
			t.Run(sym+"/"+v[:min(len(v), 16)], func(t *testing.T) {
				t.Parallel()
				img, err := Render(sym, v, 600)
				require.NoError(t, err)
				require.Equal(t, v, scan(t, sym, img))
			})
		}
	}
}

func TestPDF417HasItsStartAndStopPatternOnEveryRow(t *testing.T) {
	t.Parallel()
	// No PDF417 reader in gozxing: check what a scanner locks on to, the
	// start pattern 8 1 1 1 1 1 1 3 and the stop pattern 7 1 1 3 1 1 1 2 1
	// on every row, inside a white quiet zone.
	img := decodePNG(t, mustRender(t, PDF417, "EMP-0042 Zoë Müller 1234567890123", 600))
	b := img.Bounds()
	require.Equal(t, 600, b.Dx())
	require.Less(t, b.Dy(), b.Dx(), "PDF417 keeps its wide aspect")

	rows := 0
	for y := 0; y < b.Dy(); y++ {
		runs := runLengths(img, y)
		if len(runs) == 1 {
			continue // quiet zone above and below
		}
		rows++
		px := runs[1] / 8
		require.Positive(t, px)
		require.GreaterOrEqual(t, runs[0], 2*px, "quiet zone on the left of row %d", y)
		start := []int{8, 1, 1, 1, 1, 1, 1, 3}
		for i, w := range start {
			require.Equal(t, w*px, runs[1+i], "start pattern of row %d", y)
		}
		stop := []int{7, 1, 1, 3, 1, 1, 1, 2, 1}
		tail := runs[len(runs)-1-len(stop) : len(runs)-1]
		for i, w := range stop {
			require.Equal(t, w*px, tail[i], "stop pattern of row %d", y)
		}
		require.GreaterOrEqual(t, runs[len(runs)-1], 2*px, "quiet zone on the right of row %d", y)
	}
	require.Greater(t, rows, 6)
}

// runLengths returns the widths of alternating white and black runs on row
// y, starting with white.
func runLengths(img image.Image, y int) []int {
	b := img.Bounds()
	var runs []int
	cur, n := false, 0
	for x := b.Min.X; x < b.Max.X; x++ {
		d := dark(img.At(x, y))
		if d != cur {
			runs = append(runs, n)
			cur, n = d, 0
		}
		n++
	}
	return append(runs, n)
}

func mustRender(t *testing.T, sym, v string, size int) []byte {
	t.Helper()
	b, err := Render(sym, v, size)
	require.NoError(t, err)
	return b
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	return img
}

func TestImagesHaveTheRequestedSizeAndAWhiteMargin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sym   string
		size  int
		wantW int
		wantH int // 0: not fixed
		quiet int // modules of white around the code, at least
	}{
		{QR, 0, 300, 300, 4},
		{QR, 10, 64, 64, 4},
		{QR, 100000, 2048, 2048, 4},
		{QR, 517, 517, 517, 4},
		{DataMatrix, 300, 300, 300, 2},
		{Aztec, 300, 300, 300, 2},
		{Code128, 600, 600, 200, 10},
		{PDF417, 400, 400, 0, 2},
	} {
		t.Run(fmt.Sprintf("%s at %d", tc.sym, tc.size), func(t *testing.T) {
			t.Parallel()
			img := decodePNG(t, mustRender(t, tc.sym, "CARD-0042", tc.size))
			b := img.Bounds()
			require.Equal(t, tc.wantW, b.Dx())
			if tc.wantH > 0 {
				require.Equal(t, tc.wantH, b.Dy())
			}
			// The code sits inside a white margin at least its quiet
			// zone wide, in whole pixels per module.
			bc, err := encode(tc.sym, "CARD-0042")
			require.NoError(t, err)
			left, right, top, bottom := b.Dx(), -1, b.Dy(), -1
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					if dark(img.At(x, y)) {
						left, right = min(left, x), max(right, x)
						top, bottom = min(top, y), max(bottom, y)
					}
				}
			}
			modules := bc.Bounds().Dx()
			require.Zero(t, (right-left+1)%modules, "whole pixels per module")
			px := (right - left + 1) / modules
			require.GreaterOrEqual(t, left, tc.quiet*px, "left margin")
			require.GreaterOrEqual(t, b.Dx()-1-right, tc.quiet*px, "right margin")
			if tc.sym != Code128 {
				require.GreaterOrEqual(t, top, tc.quiet*px, "top margin")
				require.GreaterOrEqual(t, b.Dy()-1-bottom, tc.quiet*px, "bottom margin")
			}
		})
	}
}

func TestALongCode128GrowsBeyondTheRequestedWidthRatherThanFail(t *testing.T) {
	t.Parallel()
	v := strings.Repeat("Ab", 40) // 80 characters: ~900 modules
	img := decodePNG(t, mustRender(t, Code128, v, 300))
	require.Greater(t, img.Bounds().Dx(), 900)
	require.Equal(t, v, scan(t, Code128, mustRender(t, Code128, v, 300)))
}

func TestCheckSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sym, value, want string
	}{
		{Code128, "Café", `CODE128 cannot encode "é" (only ASCII)`},
		{Code128, strings.Repeat("x", 81), "too long for CODE128: 81 characters, at most 80"},
		{QR, strings.Repeat("é", 1550), "too long for QR: 3100 bytes, at most 2331"},
		{QR, strings.Repeat("7", 5597), "too long for QR: 5597 digits, at most 5596"},
		{QR, strings.Repeat("AB", 1696), "too long for QR: 3392 characters, at most 3391"},
		{QR, "ok\xff", "the barcode value is not valid UTF-8 text"},
		{QR, "", "the barcode value is empty"},
		{"EAN13", "123", `unknown barcode symbology "EAN13" (one of QR, PDF417, CODE128, AZTEC, DATAMATRIX)`},
		{DataMatrix, "Price: 5€", `DATAMATRIX cannot encode "€" (only Latin-1 characters)`},
		{DataMatrix, "èclair", `DATAMATRIX cannot encode a value that starts with "è" (its encoder reads it as the GS1 marker)`},
		{DataMatrix, strings.Repeat("x", 1559), "too long for DATAMATRIX: 1559 characters take 1559 codewords, at most 1558"},
		{Aztec, "山田", `AZTEC cannot encode "山" (only Latin-1 characters)`},
		{Aztec, strings.Repeat("é", aztecMaxBytes+1), fmt.Sprintf("too long for AZTEC: %d characters, at most %d", aztecMaxBytes+1, aztecMaxBytes)},
		{PDF417, "Tab\x00le 😀", `PDF417 cannot encode "😀" (only Latin-1 characters)`},
		{PDF417, strings.Repeat("\x01", 1059), "too long for PDF417: 1059 characters take 884 codewords, at most 883"},
	} {
		err := Check(tc.sym, tc.value)
		require.EqualError(t, err, tc.want, "%s %.20q", tc.sym, tc.value)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
		_, rerr := Render(tc.sym, tc.value, 300)
		require.EqualError(t, rerr, tc.want, "Render says what Check says")
	}
	require.NoError(t, Check(Code128, strings.Repeat("x", 80)))
	require.NoError(t, Check(QR, strings.Repeat("é", 1165)))
	require.NoError(t, Check(DataMatrix, "clair è"))
	require.NoError(t, Check(PDF417, strings.Repeat("\x01", 1058)))
}

// generators make values of one kind of content, n characters long.
var generators = map[string]func(r *rand.Rand, n int) string{
	"digits":       fromAlphabet("0123456789"),
	"alphanumeric": fromAlphabet("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"),
	"printable": func(r *rand.Rand, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(' ' + r.IntN(95))
		}
		return string(b)
	},
	"ascii": func(r *rand.Rand, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(128))
		}
		return string(b)
	},
	"latin1":     fromAlphabet("aéZ0 9ü,.-ÿ\u0080ñè"),
	"unicode":    fromAlphabet("a山😀é1 €"),
	"digit runs": fromAlphabet("0123456789012345678901234567890123456789ab.X"),
	"card ids": func(r *rand.Rand, n int) string {
		var b strings.Builder
		for b.Len() < n {
			fmt.Fprintf(&b, "EMP-%06d/", r.IntN(1000000))
		}
		return b.String()[:n]
	},
	"punctuation": fromAlphabet(";<>@[]_`~!\r\t,:\n-.$/\"|*()?{}'aA1 "),
}

func fromAlphabet(alphabet string) func(r *rand.Rand, n int) string {
	runes := []rune(alphabet)
	return func(r *rand.Rand, n int) string {
		out := make([]rune, n)
		for i := range out {
			out[i] = runes[r.IntN(len(runes))]
		}
		return string(out)
	}
}

// deliberate reports whether Check refuses v on purpose although boombuler
// would encode it (into something a scanner reads differently, or beyond a
// limit that does not depend on the content).
func deliberate(sym, v string) bool {
	switch sym {
	case Code128:
		return strings.ContainsAny(v, "ñòóô") // boombuler's FNC1..FNC4
	case QR:
		return false
	}
	// The Latin-1 symbologies: boombuler takes any bytes, but scanners
	// read them as ISO-8859-1.
	if strings.ContainsFunc(v, func(r rune) bool { return r > 0xff }) {
		return true
	}
	switch sym {
	case DataMatrix:
		return strings.HasPrefix(v, "è")
	case Aztec:
		return utf8.RuneCountInString(v) > aztecMaxBytes
	}
	return false
}

// checkAgrees compares Check with boombuler's own verdict on v, and with
// Render's when render is set.
func checkAgrees(t *testing.T, sym, v string, render bool) {
	t.Helper()
	checkErr := Check(sym, v)
	_, encErr := encode(sym, v)
	switch {
	case checkErr == nil && encErr != nil:
		t.Fatalf("%s: Check accepts %d characters %.40q, the encoder fails: %v", sym, utf8.RuneCountInString(v), v, encErr)
	case checkErr != nil && encErr == nil && !deliberate(sym, v):
		t.Fatalf("%s: Check refuses %d characters %.40q (%v), the encoder takes it", sym, utf8.RuneCountInString(v), v, checkErr)
	}
	if checkErr == nil && render {
		_, err := Render(sym, v, 64)
		require.NoError(t, err)
	}
}

func TestCheckAcceptsExactlyWhatRenderCanEncode(t *testing.T) {
	t.Parallel()
	for _, sym := range Symbologies {
		t.Run(sym, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, uint64(len(sym))))
			accepted, refused := 0, 0 // near the capacity
			for _, name := range slices.Sorted(maps.Keys(generators)) {
				gen := generators[name]
				// Short and medium values of every kind.
				for i := range 30 {
					checkAgrees(t, sym, gen(r, 1+r.IntN(120)), i%5 == 0)
				}
				// Around the capacity: find the longest value of this
				// kind Check accepts, then compare every length near it.
				// fits reports whether a value of n characters fits, or
				// false, false when this kind has characters sym refuses.
				fits := func(n int) (fit, known bool) {
					for range 20 {
						err := Check(sym, gen(r, n))
						if err == nil {
							return true, true
						}
						if strings.HasPrefix(err.Error(), "too long") {
							return false, true
						}
					}
					return false, false
				}
				limit, searchable := 1, true
				for limit < 1<<13 {
					fit, known := fits(limit * 2)
					if !known {
						searchable = false
					}
					if !fit {
						break
					}
					limit *= 2
				}
				lo, hi := limit, limit*2
				for lo+1 < hi && searchable {
					mid := (lo + hi) / 2
					fit, known := fits(mid)
					searchable = known
					if fit {
						lo = mid
					} else {
						hi = mid
					}
				}
				if !searchable {
					continue // mostly characters sym refuses: no capacity to find
				}
				lengths := []int{}
				for n := max(1, lo-12); n <= lo+12; n++ {
					lengths = append(lengths, n)
				}
				if sym == QR || sym == Aztec {
					// Their encoders take up to 0.1 s near capacity.
					lengths = []int{max(1, lo-5), max(1, lo-1), lo, lo + 1, lo + 5}
				}
				for _, n := range lengths {
					v := gen(r, n)
					checkAgrees(t, sym, v, false)
					switch err := Check(sym, v); {
					case err == nil:
						accepted++
					case strings.HasPrefix(err.Error(), "too long"):
						refused++
					}
				}
			}
			require.Positive(t, accepted, "values near the capacity that fit")
			require.Positive(t, refused, "values near the capacity that do not")
		})
	}
}

func TestAztecTakesAnyContentUpToItsLimit(t *testing.T) {
	t.Parallel()
	// The contents that compact worst: bytes that need binary shift and
	// stuff the most bits.
	for _, v := range []string{
		strings.Repeat("\x00", aztecMaxBytes),
		strings.Repeat("ÿ", aztecMaxBytes),
		strings.Repeat("\u0080", aztecMaxBytes),
		strings.Repeat("é\x00", aztecMaxBytes/2),
	} {
		require.NoError(t, Check(Aztec, v))
		_, err := encode(Aztec, v)
		require.NoError(t, err)
	}
}

func BenchmarkCheck(b *testing.B) {
	values := []string{"12345678", "EMP-0042/ZH", "Zoe Muller", "https://lintel.example/c/8f14e45f"}
	for _, sym := range Symbologies {
		b.Run(sym, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := Check(sym, values[i%len(values)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRender(b *testing.B) {
	for _, sym := range Symbologies {
		b.Run(sym, func(b *testing.B) {
			for b.Loop() {
				if _, err := Render(sym, "EMP-0042/ZH", 600); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPDF417CountsCodewordsExactlyAsTheEncoder(t *testing.T) {
	t.Parallel()
	// A run of 13 or more digits always costs a latch and its base-900
	// words, whatever came before, so appending one tops any value up to
	// exactly the capacity, or one codeword past it. The encoder must take
	// the first and refuse the second: Check counted v's codewords right.
	r := rand.New(rand.NewPCG(7, 7))
	names := slices.Sorted(maps.Keys(generators))
	var digitWords [3000]int // a run of k digits: latch and base-900 words
	for k := range digitWords {
		digitWords[k] = pdf417Codewords(strings.Repeat("7", k))
	}
	tried := 0
	for i := range 400 {
		gen := generators[names[i%len(names)]]
		v := gen(r, 1+r.IntN(300))
		if last := v[len(v)-1]; last >= '0' && last <= '9' || Check(PDF417, v) != nil {
			continue
		}
		for _, target := range []int{pdf417MaxCodewords, pdf417MaxCodewords + 1} {
			// v's own segmentation is the same before any run of 13
			// digits or more.
			m := pdf417Codewords(string(latin1(v))+strings.Repeat("7", 13)) - digitWords[13]
			words := func(k int) int { return m + digitWords[k] }
			k := 13
			for words(k) < target {
				k++
			}
			if words(k) != target {
				continue // the digits' words jumped past the target
			}
			_, err := encode(PDF417, v+strings.Repeat("7", k))
			if target == pdf417MaxCodewords {
				require.NoError(t, err, "%.60q + %d digits should be exactly full", v, k)
			} else {
				require.Error(t, err, "%.60q + %d digits should be one codeword too many", v, k)
			}
			tried++
		}
	}
	require.Greater(t, tried, 300)
}
