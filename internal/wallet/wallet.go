// Package wallet serves the cardholder's wallet: a small installable web app
// (HTML, JavaScript, CSS, a web app manifest and a service worker, all
// embedded in the binary) that redeems an invitation link through the public
// GraphQL operations walletInvitation and redeemInvitation, keeps the card
// and a non-extractable device key in the browser's IndexedDB, and shows the
// card with a rotating, device-signed QR code.
//
// Mount [Handler] at "/wallet/" (it sees the full request path; do not strip
// the prefix). The page talks to POST /graphql on the same origin.
package wallet

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the handler serves under.
const Prefix = "/wallet/"

// ContentSecurityPolicy is sent with every response of the handler.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

type asset struct {
	body        []byte
	contentType string
	etag        string
	cache       string
}

var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".webmanifest": "application/manifest+json",
	".png":         "image/png",
	".svg":         "image/svg+xml",
}

// The version placeholder in sw.js; it becomes a hash of all the assets, so
// that any change installs a fresh service worker and cache.
const versionPlaceholder = "@@VERSION@@"

type handler struct {
	index    asset
	manifest asset
	sw       asset
	assets   map[string]asset // by name under static/
}

// Handler serves the wallet under /wallet/:
//
//	/wallet/                       the app (index.html, no-store)
//	/wallet/invite/{token}         the same page; its script reads the token
//	/wallet/static/{file}          scripts, styles and icons (ETag, revalidated)
//	/wallet/manifest.webmanifest   the web app manifest
//	/wallet/sw.js                  the service worker (scope /wallet/)
//
// Anything else is 404; methods other than GET and HEAD are 405. Every
// response carries [ContentSecurityPolicy], X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer (invitation tokens are in the URL) and
// X-Frame-Options: DENY.
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		panic(err) // the embedded files are fixed at build time
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	h := &handler{assets: map[string]asset{}}
	all := sha256.New()
	raw := map[string][]byte{}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		raw[name] = b
		fmt.Fprintf(all, "%s\x00%d\x00", name, len(b))
		all.Write(b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	version := base64.RawURLEncoding.EncodeToString(all.Sum(nil)[:12])
	for name, b := range raw {
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil, fmt.Errorf("wallet: no content type for %s", name)
		}
		a := asset{body: b, contentType: ct, cache: "no-cache"}
		switch name {
		case "index.html":
			a.cache = "no-store"
			h.index = a
			continue
		case "sw.js":
			a.body = bytes.ReplaceAll(b, []byte(versionPlaceholder), []byte(version))
		}
		sum := sha256.Sum256(a.body)
		a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
		switch name {
		case "sw.js":
			h.sw = a
		case "manifest.webmanifest":
			h.manifest = a
		default:
			h.assets[name] = a
		}
	}
	if h.index.body == nil || h.sw.body == nil || h.manifest.body == nil {
		return nil, fmt.Errorf("wallet: index.html, sw.js or manifest.webmanifest missing")
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")

	a, ok := h.route(r.URL.Path)
	if !ok {
		hdr.Set("Cache-Control", "no-store")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		hdr.Set("Cache-Control", "no-store")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", a.cache)
	if a.etag != "" {
		hdr.Set("ETag", a.etag)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (h *handler) route(p string) (asset, bool) {
	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		return asset{}, false
	}
	switch {
	case rest == "":
		return h.index, true
	case rest == "manifest.webmanifest":
		return h.manifest, true
	case rest == "sw.js":
		return h.sw, true
	}
	if token, ok := strings.CutPrefix(rest, "invite/"); ok {
		return h.index, token != "" && !strings.Contains(token, "/")
	}
	if name, ok := strings.CutPrefix(rest, "static/"); ok {
		a, ok := h.assets[name]
		return a, ok
	}
	return asset{}, false
}
