package testbrowser

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

func TestNewEvaluate(t *testing.T) {
	ctx := New(t)
	sum, err := chromedp.Run(ctx, chromedp.Evaluate[int](`1 + 2`))
	if err != nil || sum != 3 {
		t.Fatalf("evaluate: %d, %v", sum, err)
	}
	tab := NewTab(t, ctx)
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeQR(t *testing.T) {
	// A QR code made by gozxing's own encoder round-trips.
	m, err := qrcode.NewQRCodeWriter().Encode("hello lintel", gozxing.BarcodeFormat_QR_CODE, 200, 200, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, m.GetWidth(), m.GetHeight()))
	for y := range m.GetHeight() {
		for x := range m.GetWidth() {
			c := color.Gray{255}
			if m.Get(x, y) {
				c = color.Gray{0}
			}
			img.SetGray(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeQR(buf.Bytes())
	if err != nil || got != "hello lintel" {
		t.Fatalf("DecodeQR = %q, %v", got, err)
	}
	if _, err := DecodeQR(buf.Bytes()[:10]); err == nil {
		t.Fatal("DecodeQR of a broken PNG: no error")
	}
}

func TestMissingBrowser(t *testing.T) {
	t.Setenv("CHROMIUM", "/nonexistent/chromium")
	_, err := ExecPath()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("Debian package chromium")) {
		t.Fatalf("ExecPath error = %v", err)
	}
}
