// Package barcodes renders a card's barcode value as a PNG image and tells,
// cheaply and before anything is rendered, whether a value can be encoded in
// a template's symbology.
//
// The encoders are github.com/boombuler/barcode's. Check restates, as rules
// on characters and lengths, what those encoders accept at the error
// correction levels Render uses, so an import can check every row without
// encoding it. Where an encoder would accept a value but produce something a
// scanner reads differently (CODE128 turns "ñ" into a function code;
// DATAMATRIX takes a leading "è" for the GS1 marker), Check refuses the
// value; where another mode avoids it (QR's automatic mode encodes "+12345"
// as the digits "012345"), Render picks the mode itself.
//
// Which characters a symbology holds:
//   - QR: any text, as UTF-8 (what phone scanners expect), in numeric,
//     alphanumeric or byte mode, whichever is the most compact.
//   - CODE128: ASCII only, 1 to 80 characters.
//   - PDF417, DATAMATRIX, AZTEC: Latin-1 (U+0000 to U+00FF), encoded as
//     ISO-8859-1, the character set scanners assume for these symbologies.
package barcodes

import (
	"fmt"
	"image/color"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/aztec"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/datamatrix"
	"github.com/boombuler/barcode/pdf417"
	"github.com/boombuler/barcode/qr"
)

// The symbologies, spelled as the template's symbology enum.
const (
	QR         = "QR"
	PDF417     = "PDF417"
	Code128    = "CODE128"
	Aztec      = "AZTEC"
	DataMatrix = "DATAMATRIX"
)

// Symbologies lists every symbology Render and Check know.
var Symbologies = []string{QR, PDF417, Code128, Aztec, DataMatrix}

// Image widths Render produces.
const (
	DefaultSize = 300
	MinSize     = 64
	MaxSize     = 2048
)

// The error correction Render asks of each encoder; Check's capacities are
// computed for these.
const (
	qrLevel         = qr.M // recovers 15% of the symbol
	pdf417Level     = 3    // 16 error correction codewords
	aztecECCPercent = 33
)

// quietZone is the white margin, in modules, around each symbology: what
// the symbology's specification asks for, so that scanners find the code
// next to other things on a screen or card.
var quietZone = map[string]int{QR: 4, PDF417: 2, Code128: 10, Aztec: 2, DataMatrix: 2}

// Render returns a PNG of value encoded in symbology, size pixels wide
// (clamped to [MinSize, MaxSize]; 0 means DefaultSize). QR, AZTEC and
// DATAMATRIX images are square, CODE128 images a third as high as wide, and
// PDF417 images as high as the symbol's own aspect needs. Each module is a
// whole number of pixels, centred, with a quiet zone around the code. A code
// with more modules than size pixels gets one pixel per module, and the
// image is then wider than size.
func Render(symbology, value string, size int) ([]byte, error) {
	if err := Check(symbology, value); err != nil {
		return nil, err
	}
	bc, err := encode(symbology, value)
	if err != nil {
		// Check said it fits: this is a disagreement with the encoder,
		// not the user's mistake.
		return nil, fmt.Errorf("barcodes: encode %s: %w", symbology, err)
	}
	png, err := rasterize(bc, symbology, clampSize(size))
	if err != nil {
		return nil, fmt.Errorf("barcodes: encode PNG: %w", err)
	}
	return png, nil
}

func clampSize(size int) int {
	switch {
	case size == 0:
		return DefaultSize
	case size < MinSize:
		return MinSize
	case size > MaxSize:
		return MaxSize
	}
	return size
}

// encode runs boombuler's encoder for value without any of Check's rules.
func encode(symbology, value string) (barcode.Barcode, error) {
	switch symbology {
	case QR:
		// Our own choice of mode rather than qr.Auto: Auto tries numeric
		// first with strconv.Atoi, which takes "+12" for a number.
		mode := qr.Unicode
		switch qrModeOf(value) {
		case qrNumeric:
			mode = qr.Numeric
		case qrAlphanumeric:
			mode = qr.AlphaNumeric
		}
		return qr.Encode(value, qrLevel, mode)
	case Code128:
		return code128.Encode(value)
	case PDF417:
		return pdf417.Encode(string(latin1(value)), pdf417Level)
	case DataMatrix:
		return datamatrix.Encode(string(latin1(value)))
	case Aztec:
		return aztec.Encode(latin1(value), aztecECCPercent, aztec.DEFAULT_LAYERS)
	}
	return nil, fmt.Errorf("unknown symbology %q", symbology)
}

// latin1 converts text Check accepted for a Latin-1 symbology to ISO-8859-1
// bytes.
func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// rasterize paints bc's modules as a 1-bit grayscale PNG.
func rasterize(bc barcode.Barcode, symbology string, size int) ([]byte, error) {
	b := bc.Bounds()
	w, h := b.Dx(), b.Dy()
	quiet := quietZone[symbology]
	px := max(size/(w+2*quiet), 1)
	imgW := max(size, (w+2*quiet)*px)

	var imgH, top, codeH int
	switch {
	case symbology == Code128:
		// Linear: every bar runs the full height but for a margin.
		imgH = max(imgW/3, 8)
		top = imgH / 10
		codeH = imgH - 2*top
	case symbology == PDF417:
		imgH = (h + 2*quiet) * px
		top = quiet * px
		codeH = h * px
	default:
		imgH = imgW
		top = (imgH - h*px) / 2
		codeH = h * px
	}
	left := (imgW - w*px) / 2

	img := newBitImage(imgW, imgH)
	rowHeight := codeH / h
	for my := range h {
		y0 := top + my*rowHeight
		row := img.row(y0)
		for mx := range w {
			if dark(bc.At(b.Min.X+mx, b.Min.Y+my)) {
				for x := left + mx*px; x < left+(mx+1)*px; x++ {
					row[x>>3] &^= 0x80 >> (x & 7)
				}
			}
		}
		for y := y0 + 1; y < y0+rowHeight; y++ {
			copy(img.row(y), row)
		}
	}
	return img.encodePNG()
}

func dark(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r+g+b < 3*0x8000
}
