package wallet

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"

	"github.com/lintel/lintel/internal/testbrowser"
)

// Byte-mode capacities of ISO/IEC 18004 Table 7, level M, versions 1–40.
var capacityM = []int{14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
	711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809, 1911, 1989, 2099, 2213, 2331}

// Version-40 capacities of the other levels.
var capacity40 = map[string]int{"L": 2953, "M": 2331, "Q": 1663, "H": 1273}

// randomText returns n printable ASCII characters.
func randomText(r *rand.Rand, n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!*'();:@&=+$,/?#[] <>{}|^`\"%\\"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

type qrCase struct {
	name    string
	text    string
	options map[string]any // ecl, mask
	version int            // expected version, 0: any
	ecl     string         // expected level, "": M
}

type qrInfo struct {
	Version int    `json:"version"`
	ECL     string `json:"ecl"`
	Mask    int    `json:"mask"`
	Size    int    `json:"size"`
}

// TestQREncoder draws strings with static/qr.js in Chromium, screenshots
// the canvas and decodes it with ZXing.
func TestQREncoder(t *testing.T) {
	t.Parallel()
	ctx := testbrowser.New(t)
	mux := http.NewServeMux()
	mux.Handle("/wallet/", Handler())
	mux.Handle("/qrtest/", http.StripPrefix("/qrtest/", http.FileServer(http.Dir("testdata"))))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do(t, ctx, chromedp.Navigate(srv.URL+"/qrtest/qr.html"))
	waitJS(t, ctx, `window.qrTestReady === true`, 10*time.Second)

	for v := 1; v <= 40; v++ {
		if got := eval[int](t, ctx, fmt.Sprintf(`qrTest.capacity(%d, 'M')`, v)); got != capacityM[v-1] {
			t.Errorf("capacity of version %d-M = %d, want %d", v, got, capacityM[v-1])
		}
	}
	for ecl, want := range capacity40 {
		if got := eval[int](t, ctx, fmt.Sprintf(`qrTest.capacity(40, %s)`, js(ecl))); got != want {
			t.Errorf("capacity of version 40-%s = %d, want %d", ecl, got, want)
		}
	}

	r := rand.New(rand.NewPCG(1, 2))
	credential := "LC1." + randomJWT(r, 648) + ".1767225600." + strings.Repeat("A", 86)
	if len(credential) != 750 {
		t.Fatalf("credential-like code is %d characters", len(credential))
	}
	cases := []qrCase{
		{name: "short", text: "hello", version: 1},
		{name: "empty", text: "", version: 1},
		{name: "umlauts and emoji", text: "Grüße aus Zürich – Straße 5 · Ærø 👋🚪✅"},
		{name: "CJK", text: "日本語のテキストと한국어"},
		{name: "credential code", text: credential, version: 22},
		// With the 12-bit ECI header, 10-M holds 212 bytes of UTF-8.
		{name: "utf8 at 10-M limit", text: strings.Repeat("ä", 106), version: 10},
		{name: "utf8 over 10-M limit", text: strings.Repeat("ä", 107), version: 11},
	}
	for v := 1; v <= 40; v++ {
		cases = append(cases, qrCase{name: fmt.Sprintf("%d-M full", v), text: randomText(r, capacityM[v-1]), version: v})
	}
	for _, v := range []int{1, 9, 10, 22, 26, 39} {
		cases = append(cases, qrCase{name: fmt.Sprintf("%d-M full+1", v), text: randomText(r, capacityM[v-1]+1), version: v + 1})
	}
	cases = append(cases,
		qrCase{name: "too long for M", text: randomText(r, capacityM[39]+1), ecl: "L"},
		qrCase{name: "40-L full", text: randomText(r, capacity40["L"]), version: 40, ecl: "L"},
		qrCase{name: "40-Q full", text: randomText(r, capacity40["Q"]), options: map[string]any{"ecl": "Q"}, version: 40, ecl: "Q"},
		qrCase{name: "40-H full", text: randomText(r, capacity40["H"]), options: map[string]any{"ecl": "H"}, version: 40, ecl: "H"},
		qrCase{name: "Q mid", text: randomText(r, 300), options: map[string]any{"ecl": "Q"}, ecl: "Q"},
		qrCase{name: "H mid", text: randomText(r, 300), options: map[string]any{"ecl": "H"}, ecl: "H"},
		qrCase{name: "1-L", text: randomText(r, 17), options: map[string]any{"ecl": "L"}, version: 1, ecl: "L"},
	)
	for mask := range 8 {
		cases = append(cases, qrCase{name: fmt.Sprintf("mask %d", mask), text: "Lintel mask test " + randomText(r, 60),
			options: map[string]any{"mask": mask}})
	}

	masks := map[int]bool{}
	var wg sync.WaitGroup
	for _, c := range cases {
		if c.ecl == "" {
			c.ecl = "M"
		}
		if c.options == nil {
			c.options = map[string]any{}
		}
		info := eval[qrInfo](t, ctx, fmt.Sprintf(`qrTest.draw(%s, %d, %s)`, js(c.text), scaleFor(len(c.text)), js(c.options)))
		if c.version != 0 && info.Version != c.version || info.ECL != c.ecl || info.Size != 17+4*info.Version {
			t.Errorf("%s: encoded as %+v, want version %d-%s", c.name, info, c.version, c.ecl)
		}
		masks[info.Mask] = true
		png, err := testbrowser.Screenshot(ctx, "#c")
		if err != nil {
			t.Fatalf("%s: screenshot: %v", c.name, err)
		}
		wg.Go(func() { // decoding is the slow part
			got, err := testbrowser.DecodeQRStrict(png)
			if err != nil {
				t.Logf("%s (version %d-%s, mask %d): ZXing's detector alone misses it: %v", c.name, info.Version, info.ECL, info.Mask, err)
				got, err = testbrowser.DecodeQR(png)
			}
			if err != nil {
				t.Errorf("%s (version %d-%s, mask %d): %v", c.name, info.Version, info.ECL, info.Mask, err)
			} else if got != c.text {
				t.Errorf("%s: decoded %q, want %q", c.name, got, c.text)
			}
		})
	}
	wg.Wait()
	if len(masks) != 8 {
		t.Errorf("masks used: %v", masks)
	}

	// Every version and level, read straight from the module matrix by
	// ZXing's decoder: the symbol must need no error correction and not be
	// mirrored.
	for v := 1; v <= 40; v++ {
		for i, ecl := range []string{"L", "M", "Q", "H"} {
			text := randomText(r, 1+r.IntN(7)) // fits every version-1 level
			if ecl == "M" {
				text = randomText(r, capacityM[v-1])
			}
			opts := map[string]any{"ecl": ecl, "minVersion": v, "mask": (v + i) % 8}
			got := eval[struct {
				Size    int    `json:"size"`
				Modules string `json:"modules"`
			}](t, ctx, fmt.Sprintf(`qrTest.modules(%s, %s)`, js(text), js(opts)))
			if got.Size != 17+4*v || len(got.Modules) != got.Size*got.Size {
				t.Fatalf("version %d-%s: size %d, %d modules", v, ecl, got.Size, len(got.Modules))
			}
			bits, _ := gozxing.NewBitMatrix(got.Size, got.Size)
			for i, c := range got.Modules {
				if c == '1' {
					bits.Set(i%got.Size, i/got.Size)
				}
			}
			res, err := decoder.NewDecoder().Decode(bits, nil)
			switch {
			case err != nil:
				t.Errorf("version %d-%s, mask %d: %v", v, ecl, opts["mask"], err)
			case res.GetText() != text:
				t.Errorf("version %d-%s: decoded %q, want %q", v, ecl, res.GetText(), text)
			case res.GetErrorsCorrected() != 0:
				t.Errorf("version %d-%s: %d errors corrected", v, ecl, res.GetErrorsCorrected())
			case res.GetOther() != nil:
				t.Errorf("version %d-%s: read mirrored", v, ecl)
			case res.GetECLevel() != ecl:
				t.Errorf("version %d-%s: level %s", v, ecl, res.GetECLevel())
			}
		}
	}

	if msg := eval[string](t, ctx, fmt.Sprintf(`qrTest.encodeError(%s)`, js(strings.Repeat("x", capacity40["L"]+1)))); !strings.HasPrefix(msg, "RangeError") {
		t.Errorf("too long a text: %q", msg)
	}
}

// scaleFor picks pixels per module so that big symbols stay a few hundred
// pixels wide.
func scaleFor(n int) int {
	switch {
	case n > 300:
		return 4
	default:
		return 6
	}
}

// randomJWT returns a JWT-shaped string (three base64url parts) of n
// characters.
func randomJWT(r *rand.Rand, n int) string {
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = b64[r.IntN(len(b64))]
	}
	b[36], b[n-87] = '.', '.'
	return string(b)
}
