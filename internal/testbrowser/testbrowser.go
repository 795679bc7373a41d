// Package testbrowser starts a real headless Chromium for tests, through
// chromedp, and reads QR codes from its screenshots.
//
// Every call of [New] starts its own browser with a fresh, empty profile
// directory, so storage (IndexedDB, service workers, cookies) never leaks from
// one test to another; the browser stops and the profile is removed when the
// test ends. The browser is Debian's Chromium at /usr/bin/chromium, or the
// binary named by $CHROMIUM. A missing browser fails the test (it is never
// skipped).
package testbrowser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// ErrNoBrowser is wrapped by the error of [ExecPath].
var ErrNoBrowser = errors.New("testbrowser: Chromium not found")

// DefaultPath is where Debian's chromium package installs the browser.
const DefaultPath = "/usr/bin/chromium"

// ExecPath returns the Chromium binary the tests use: $CHROMIUM when set,
// otherwise [DefaultPath]. The error says how to install it.
func ExecPath() (string, error) {
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = DefaultPath
	}
	if p, err := exec.LookPath(path); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: nothing at %s; install the Debian package chromium (apt-get install chromium) or set CHROMIUM to a Chromium binary", ErrNoBrowser, path)
}

// New starts a fresh headless Chromium for t and returns the context of its
// first tab; pass it to chromedp.Run and chromedp.Do. The browser runs with
// its own empty profile directory, and both are gone when t ends. What the
// pages write to the console is logged with t.Logf. When t has a deadline
// (go test -timeout) the context ends shortly before it, so a hung browser
// fails the test with a message instead of killing the binary.
func New(t testing.TB) context.Context {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "lintel-chromium-*")
	if err != nil {
		t.Fatalf("testbrowser: profile directory: %v", err)
	}

	parent, cancelParent := context.WithCancel(context.Background())
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			parent, cancelParent = context.WithDeadline(context.Background(), deadline.Add(-5*time.Second))
		}
	}

	output := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1024),
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	stopLog := logConsole(t, ctx)

	t.Cleanup(func() {
		stopLog()
		closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = chromedp.Cancel(closeCtx) // closes the browser gracefully
		cancel()
		cancelTab()
		cancelAlloc() // waits for the browser process
		cancelParent()
		for range 50 {
			// Chromium's helper processes can still write for a moment.
			if err := os.RemoveAll(dir); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	startCtx, cancelStart := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStart()
	if err := chromedp.Do(startCtx); err != nil {
		t.Fatalf("testbrowser: starting %s: %v\nbrowser output:\n%s", path, err, output.String())
	}
	return ctx
}

// NewTab opens another tab in the browser of ctx (a context from [New] or
// NewTab). It closes when t ends.
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	stopLog := logConsole(t, tab)
	t.Cleanup(func() {
		stopLog()
		cancel()
	})
	startCtx, cancelStart := context.WithTimeout(tab, 15*time.Second)
	defer cancelStart()
	if err := chromedp.Do(startCtx); err != nil {
		t.Fatalf("testbrowser: new tab: %v", err)
	}
	return tab
}

// logConsole logs the console messages of the tab of ctx until the returned
// func is called (before t ends: t.Logf must not run after that).
func logConsole(t testing.TB, ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	stopped := false
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			if !stopped {
				where := ""
				if m.URL != "" {
					where = fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
				}
				t.Logf("browser console %s%s", m, where)
			}
			mu.Unlock()
		}
	}()
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		cancel()
		<-done
	}
}

// Screenshot returns a PNG of the first element matching the CSS selector,
// once it is visible, in device pixels (the page's device scale factor
// applies).
func Screenshot(ctx context.Context, selector string) ([]byte, error) {
	return chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(selector)))
}

// DecodeQR reads the one QR code in a PNG image and returns its text. It uses
// gozxing's QR reader with TRY_HARDER. When that finds no code, it tries once
// more with PURE_BARCODE, which suits a screenshot of exactly one symbol (a
// canvas or img): ZXing's finder-pattern search can stop at a finder-like
// spot in the data of a large, pixel-perfect symbol and miss the real one.
// Byte segments without an ECI are decoded the way ZXing guesses their
// character set.
func DecodeQR(pngData []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return "", fmt.Errorf("testbrowser: decode PNG: %w", err)
	}
	return DecodeQRImage(img)
}

// DecodeQRImage is [DecodeQR] for an image already decoded.
func DecodeQRImage(img image.Image) (string, error) {
	text, err := decodeQR(img, false)
	if err != nil {
		var err2 error
		if text, err2 = decodeQR(img, true); err2 == nil {
			return text, nil
		}
		b := img.Bounds()
		return "", fmt.Errorf("testbrowser: no QR code found in the %dx%d image: %w (as a pure barcode: %v)", b.Dx(), b.Dy(), err, err2)
	}
	return text, nil
}

// DecodeQRStrict is [DecodeQR] without the PURE_BARCODE fallback: only
// ZXing's detector as a camera-based scanner uses it.
func DecodeQRStrict(pngData []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return "", fmt.Errorf("testbrowser: decode PNG: %w", err)
	}
	return decodeQR(img, false)
}

func decodeQR(img image.Image, pure bool) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("testbrowser: bitmap: %w", err)
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	if pure {
		hints[gozxing.DecodeHintType_PURE_BARCODE] = true
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 64<<10 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
