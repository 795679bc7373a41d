package wallet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkSecurityHeaders(t *testing.T, path string, res *http.Response) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
}

func TestHandlerPagesAndHeaders(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, "GET", "/wallet/"))
	for _, path := range []string{"/wallet/", "/wallet/invite/abc", "/wallet/invite/Zx-9_y.%20z?x=1"} {
		res := get(t, h, "GET", path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, res.StatusCode)
		}
		checkSecurityHeaders(t, path, res)
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
		}
		if b := body(t, res); !bytes.Equal(b, index) {
			t.Errorf("%s: not the wallet page", path)
		}
	}

	for _, path := range []string{
		"/wallet/static/nope.js", "/wallet/static/", "/wallet/static", "/wallet/invite/", "/wallet/invite/a/b", "/wallet/invite/abc/",
		"/wallet/index.html", "/wallet/static/index.html", "/wallet/static/sw.js", "/wallet/nope", "/walletx", "/",
		"/wallet/static/../static/app.js",
	} {
		res := get(t, h, "GET", path)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, res.StatusCode)
		}
		checkSecurityHeaders(t, path, res)
	}

	res := get(t, h, "POST", "/wallet/")
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /wallet/: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	res = get(t, h, "HEAD", "/wallet/static/app.js")
	if res.StatusCode != http.StatusOK || len(body(t, res)) != 0 {
		t.Errorf("HEAD app.js: %d", res.StatusCode)
	}
}

func TestHandlerAssets(t *testing.T) {
	h := Handler()
	types := map[string]string{
		"/wallet/static/app.js":        "text/javascript; charset=utf-8",
		"/wallet/static/qr.js":         "text/javascript; charset=utf-8",
		"/wallet/static/wallet.css":    "text/css; charset=utf-8",
		"/wallet/static/icon-192.png":  "image/png",
		"/wallet/sw.js":                "text/javascript; charset=utf-8",
		"/wallet/manifest.webmanifest": "application/manifest+json",
	}
	for path, ct := range types {
		res := get(t, h, "GET", path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, res.StatusCode)
		}
		checkSecurityHeaders(t, path, res)
		if got := res.Header.Get("Content-Type"); got != ct {
			t.Errorf("%s: Content-Type %q, want %q", path, got, ct)
		}
		etag := res.Header.Get("ETag")
		if !regexp.MustCompile(`^"[A-Za-z0-9_-]{22}"$`).MatchString(etag) {
			t.Errorf("%s: ETag %q", path, etag)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
		again := get(t, h, "GET", path, "If-None-Match", etag)
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: status %d, want 304", path, again.StatusCode)
		}
	}
	sw := string(body(t, get(t, h, "GET", "/wallet/sw.js")))
	if strings.Contains(sw, versionPlaceholder) || !regexp.MustCompile(`const VERSION = '[A-Za-z0-9_-]{16}';`).MatchString(sw) {
		t.Errorf("sw.js has no version:\n%.300s", sw)
	}
}

func TestManifest(t *testing.T) {
	h := Handler()
	var m struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		ShortName string `json:"short_name"`
		StartURL  string `json:"start_url"`
		Scope     string `json:"scope"`
		Display   string `json:"display"`
		Icons     []struct {
			Src     string `json:"src"`
			Sizes   string `json:"sizes"`
			Type    string `json:"type"`
			Purpose string `json:"purpose"`
		} `json:"icons"`
	}
	b := body(t, get(t, h, "GET", "/wallet/manifest.webmanifest"))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if m.StartURL != "/wallet/" || m.Scope != "/wallet/" || m.ID != "/wallet/" || m.Display != "standalone" || m.Name == "" || m.ShortName == "" {
		t.Errorf("manifest: %+v", m)
	}
	sizes := map[string]bool{}
	for _, icon := range m.Icons {
		res := get(t, h, "GET", icon.Src)
		if res.StatusCode != http.StatusOK || icon.Type != "image/png" {
			t.Fatalf("icon %s: status %d, type %q", icon.Src, res.StatusCode, icon.Type)
		}
		img, err := png.Decode(res.Body)
		if err != nil {
			t.Fatalf("icon %s: %v", icon.Src, err)
		}
		if got := fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()); got != icon.Sizes {
			t.Errorf("icon %s is %s, the manifest says %s", icon.Src, got, icon.Sizes)
		}
		sizes[icon.Sizes+" "+icon.Purpose] = true
	}
	if !sizes["192x192 any"] || !sizes["512x512 any"] || !sizes["512x512 maskable"] {
		t.Errorf("icons: %v", sizes)
	}
}

// The page must work under the CSP: no inline scripts, styles or handlers,
// and everything it loads is served.
func TestIndexHasNoInlineCode(t *testing.T) {
	h := Handler()
	page := string(body(t, get(t, h, "GET", "/wallet/")))
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`), // a script with content
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("index.html has inline code: %q", page[loc[0]:min(loc[1]+40, len(page))])
		}
	}
	for _, m := range regexp.MustCompile(`<script\b[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(m, ` src="/wallet/`) {
			t.Errorf("script without a same-origin src: %s", m)
		}
	}
	refs := regexp.MustCompile(`(?:src|href)="(/wallet/[^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("found only %d references in index.html", len(refs))
	}
	for _, r := range refs {
		if res := get(t, h, "GET", r[1]); res.StatusCode != http.StatusOK {
			t.Errorf("index.html references %s: status %d", r[1], res.StatusCode)
		}
	}
}
