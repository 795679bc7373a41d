package wallet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/lintel/lintel/internal/testbrowser"
)

// The public wallet operations the page relies on, as the server offers
// them. The fake server below validates every request against this schema.
const walletSchema = `
scalar Time
enum Symbology { QR PDF417 CODE128 AZTEC DATAMATRIX }
type CardFieldValue { label: String! value: String! }
type WalletInvitation {
  organisation: String! templateName: String! expiresAt: Time! attemptsLeft: Int!
  uniqueIdentifierLabel: String! securityQuestions: [String!]! frontFields: [CardFieldValue!]! photoUrl: String
}
type WalletCard {
  organisation: String! templateName: String! cardId: String! barcodeValue: String! symbology: Symbology!
  barcodeImage: String! photo: String frontFields: [CardFieldValue!]!
}
type IssuedCredential { credential: String! expiresAt: Time! codeWindowSeconds: Int! card: WalletCard! }
type Query { walletInvitation(token: String!): WalletInvitation! }
type Mutation {
  redeemInvitation(token: String!, uniqueIdentifier: String!, answers: [String!]!, devicePublicKey: String!): IssuedCredential!
}
`

// fakeServer stands in for Lintel's GraphQL endpoint with fixed behaviour.
// Tokens: "good" (redeemable, 5 attempts), "expired" (redeems into an
// expired credential), "busy" (redeem is RATE_LIMITED), "last" (one attempt
// left; a wrong answer locks it), "locked" (FAILED_PRECONDITION), anything
// else NOT_FOUND. The identity is ada@example.com with answers "Rex" and
// "Blue" (case and spacing ignored).
type fakeServer struct {
	t      *testing.T
	schema *ast.Schema

	mu       sync.Mutex
	attempts map[string]int
	keys     []string // devicePublicKey of every redeemInvitation
	issued   map[string]string
}

func newFakeServer(t *testing.T) *fakeServer {
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "wallet.graphqls", Input: walletSchema})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeServer{t: t, schema: schema, attempts: map[string]int{"good": 5, "expired": 5, "busy": 5, "last": 1}, issued: map[string]string{}}
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.t.Errorf("GraphQL request: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Referer") != "" || r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
		f.t.Errorf("GraphQL request carries Referer %q, Authorization %q, Cookie %q",
			r.Header.Get("Referer"), r.Header.Get("Authorization"), r.Header.Get("Cookie"))
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("GraphQL request body: %v", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	doc, errs := gqlparser.LoadQueryWithRules(f.schema, req.Query, nil)
	if len(errs) > 0 || len(doc.Operations) != 1 {
		f.t.Errorf("the page sent an invalid query %q: %v", req.Query, errs)
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	vars, err := validator.VariableValues(f.schema, doc.Operations[0], req.Variables)
	if err != nil {
		f.t.Errorf("the page sent bad variables %v: %v", req.Variables, err)
		http.Error(w, "bad variables", http.StatusBadRequest)
		return
	}
	sel := doc.Operations[0].SelectionSet[0].(*ast.Field).Name
	var data any
	var gerr *gqlError
	switch sel {
	case "walletInvitation":
		data, gerr = f.invitation(vars["token"].(string))
	case "redeemInvitation":
		answers := []string{}
		for _, a := range vars["answers"].([]any) {
			answers = append(answers, a.(string))
		}
		data, gerr = f.redeem(vars["token"].(string), vars["uid"].(string), answers, vars["key"].(string))
	}
	w.Header().Set("Content-Type", "application/json")
	if gerr != nil {
		json.NewEncoder(w).Encode(map[string]any{"data": nil, "errors": []*gqlError{gerr}})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{sel: data}})
}

func notFound() *gqlError {
	return &gqlError{Message: "invitation not found", Extensions: map[string]any{"code": "NOT_FOUND"}}
}

func locked() *gqlError {
	return &gqlError{Message: "invitation locked", Extensions: map[string]any{"code": "FAILED_PRECONDITION"}}
}

var frontFields = []map[string]string{
	{"label": "First name", "value": "Ada"},
	{"label": "Last name", "value": "Lovelace"},
	{"label": "Department", "value": "Analytical Engines"},
}

func (f *fakeServer) invitation(token string) (any, *gqlError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token == "locked" {
		return nil, locked()
	}
	n, ok := f.attempts[token]
	if !ok {
		return nil, notFound()
	}
	if n <= 0 {
		return nil, locked()
	}
	return map[string]any{
		"organisation":          "Acme Gymnasium",
		"templateName":          "Staff",
		"expiresAt":             time.Now().Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"attemptsLeft":          n,
		"uniqueIdentifierLabel": "E-mail address",
		"securityQuestions":     []string{"Name of your first pet?", "Favourite colour?"},
		"frontFields":           frontFields,
		"photoUrl":              "/test/photo.png",
	}, nil
}

func (f *fakeServer) redeem(token, uid string, answers []string, key string) (any, *gqlError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, key)
	n, ok := f.attempts[token]
	if !ok {
		return nil, notFound()
	}
	if n <= 0 {
		return nil, locked()
	}
	if token == "busy" {
		return nil, &gqlError{Message: "too many requests", Extensions: map[string]any{"code": "RATE_LIMITED"}}
	}
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	if norm(uid) != "ada@example.com" || len(answers) != 2 || norm(answers[0]) != "rex" || norm(answers[1]) != "blue" {
		n--
		f.attempts[token] = n
		if n == 0 {
			return nil, locked()
		}
		return nil, &gqlError{Message: "identity check failed", Extensions: map[string]any{"code": "VALIDATION_FAILED", "attemptsLeft": n}}
	}
	if _, err := parseJWK(key); err != nil {
		return nil, &gqlError{Message: "bad device key: " + err.Error(), Extensions: map[string]any{"code": "VALIDATION_FAILED"}}
	}
	delete(f.attempts, token) // used
	expires := time.Now().Add(365 * 24 * time.Hour)
	if token == "expired" {
		expires = time.Now().Add(-time.Hour)
	}
	credential := fakeJWT(key)
	f.issued[credential] = key
	return map[string]any{
		"credential":        credential,
		"expiresAt":         expires.UTC().Format(time.RFC3339),
		"codeWindowSeconds": 30,
		"card": map[string]any{
			"organisation": "Acme Gymnasium",
			"templateName": "Staff",
			"cardId":       "0012345",
			"barcodeValue": "0012345",
			"symbology":    "CODE128",
			"barcodeImage": "data:image/png;base64," + base64.StdEncoding.EncodeToString(stripes()),
			"photo":        "data:image/png;base64," + base64.StdEncoding.EncodeToString(photoPNG()),
			"frontFields":  frontFields,
		},
	}, nil
}

// fakeJWT makes a JWT-shaped credential of 648 characters (the code is then
// 750), with the device key in a cnf claim as the real one has.
func fakeJWT(key string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"test-1","typ":"JWT"}`))
	claims := fmt.Sprintf(`{"sub":"rec_01J","card":"0012345","cnf":{"jwk":%s},"pad":"`, key)
	sig := enc.EncodeToString(bytes.Repeat([]byte{0xA5}, 64))
	for len(header)+1+len(enc.EncodeToString([]byte(claims+`"}`)))+1+len(sig) < 648 {
		claims += "x"
	}
	return header + "." + enc.EncodeToString([]byte(claims+`"}`)) + "." + sig
}

func parseJWK(s string) (*ecdsa.PublicKey, error) {
	var jwk struct{ Kty, Crv, X, Y, D string }
	if err := json.Unmarshal([]byte(s), &jwk); err != nil {
		return nil, err
	}
	if jwk.Kty != "EC" || jwk.Crv != "P-256" || jwk.D != "" {
		return nil, fmt.Errorf("not a public P-256 JWK: %s", s)
	}
	x, err1 := base64.RawURLEncoding.DecodeString(jwk.X)
	y, err2 := base64.RawURLEncoding.DecodeString(jwk.Y)
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		return nil, fmt.Errorf("bad coordinates in %s", s)
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
}

// stripes is a stand-in for the static barcode image.
func stripes() []byte {
	img := image.NewGray(image.Rect(0, 0, 240, 80))
	for x := range 240 {
		c := color.Gray{255}
		if (x/3)%3 != 1 && x > 10 && x < 230 {
			c = color.Gray{0}
		}
		for y := range 80 {
			img.SetGray(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func photoPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 60, 75))
	for y := range 75 {
		for x := range 60 {
			img.Set(x, y, color.RGBA{uint8(100 + x), 120, uint8(150 + y), 255})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

type code struct {
	credential string
	ts         int64
}

// checkCode decodes the #code canvas, checks the LC1 format, the device
// signature with the key the page registered, and that ts is about now.
func checkCode(t *testing.T, ctx context.Context, f *fakeServer) code {
	t.Helper()
	shot, err := testbrowser.Screenshot(ctx, "#code")
	if err != nil {
		t.Fatalf("screenshot #code: %v", err)
	}
	text, err := testbrowser.DecodeQR(shot)
	if err != nil {
		t.Fatalf("the rotating code does not decode: %v", err)
	}
	rest, ok := strings.CutPrefix(text, "LC1.")
	if !ok {
		t.Fatalf("code %q has no LC1. prefix", text)
	}
	i := strings.LastIndexByte(rest, '.')
	j := strings.LastIndexByte(rest[:max(i, 0)], '.')
	if i < 0 || j < 0 {
		t.Fatalf("code %q is not LC1.credential.ts.sig", text)
	}
	credential, tsText, sigText := rest[:j], rest[j+1:i], rest[i+1:]
	f.mu.Lock()
	key, ok := f.issued[credential]
	f.mu.Unlock()
	if !ok {
		t.Fatalf("code carries a credential the server never issued: %q", credential)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || strconv.FormatInt(ts, 10) != tsText {
		t.Fatalf("code timestamp %q", tsText)
	}
	if d := time.Since(time.Unix(ts, 0)); d < -2*time.Second || d > 8*time.Second {
		t.Errorf("code timestamp %d is %v away from now", ts, d)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigText)
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature %q: %d bytes, %v", sigText, len(sig), err)
	}
	pub, err := parseJWK(key)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("LC1." + credential + "." + tsText))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Errorf("the code's signature does not verify with the device key")
	}
	// At least 6 device pixels per module with a 4-module quiet zone.
	dim := eval[struct {
		Width   int     `json:"width"`
		Modules int     `json:"modules"`
		CSS     float64 `json:"css"`
		Ratio   float64 `json:"ratio"`
	}](t, ctx, `(() => { const c = document.querySelector('#code'); return {width: c.width, modules: +c.dataset.modules, css: c.getBoundingClientRect().width, ratio: devicePixelRatio}; })()`)
	if dim.Modules < 21+8 || dim.Width%dim.Modules != 0 || dim.Width/dim.Modules < 6 {
		t.Errorf("code canvas %d px for %d modules", dim.Width, dim.Modules)
	}
	if dim.CSS*dim.Ratio < float64(dim.Width)-1 {
		t.Logf("code canvas shown at %.0f device px for %d canvas px", dim.CSS*dim.Ratio, dim.Width)
	}
	return code{credential: credential, ts: ts}
}

func TestWalletPage(t *testing.T) {
	t.Parallel()
	fake := newFakeServer(t)
	mux := http.NewServeMux()
	mux.Handle("/wallet/", Handler())
	mux.Handle("/graphql", fake)
	mux.HandleFunc("/test/photo.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(photoPNG())
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := testbrowser.New(t)
	problems := consoleProblems(ctx)
	// A phone: 390 CSS px wide at 3 device pixels per CSS pixel.
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile))

	// No card yet.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/"))
	waitText(t, ctx, "main", "No card on this phone", 10*time.Second)

	// The invitation: card preview and the identity form.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/good"))
	waitJS(t, ctx, `document.querySelector('#identity')`, 10*time.Second)
	page := eval[struct {
		Text      string   `json:"text"`
		UIDLabel  string   `json:"uidLabel"`
		Labels    []string `json:"labels"`
		Attempts  string   `json:"attempts"`
		PhotoOK   bool     `json:"photoOK"`
		ScrollW   int      `json:"scrollW"`
		Referrer  string   `json:"referrer"`
		Overflows []string `json:"overflows"`
	}](t, ctx, `(async () => {
		const img = document.querySelector('img.photo');
		if (img && !img.complete) await new Promise((r) => { img.onload = img.onerror = r; });
		return {
			text: document.querySelector('main').textContent,
			uidLabel: document.querySelector('label[for=uid]').textContent,
			labels: [...document.querySelectorAll('.answer')].map((a) => document.querySelector('label[for="' + a.id + '"]').textContent),
			attempts: document.querySelector('#attempts').textContent,
			photoOK: !!img && img.naturalWidth === 60,
			scrollW: document.documentElement.scrollWidth,
			referrer: document.referrer,
			overflows: [...document.querySelectorAll('main *')].filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5).map((e) => e.tagName + '.' + e.className),
		};
	})()`)
	for _, want := range []string{"Acme Gymnasium", "Staff", "Ada", "Lovelace", "Analytical Engines", "Department"} {
		if !strings.Contains(page.Text, want) {
			t.Errorf("invitation page lacks %q:\n%s", want, page.Text)
		}
	}
	if page.UIDLabel != "E-mail address" || strings.Join(page.Labels, "|") != "Name of your first pet?|Favourite colour?" {
		t.Errorf("labels: %q, %q", page.UIDLabel, page.Labels)
	}
	if page.Attempts != "5 attempts left." {
		t.Errorf("#attempts = %q", page.Attempts)
	}
	if !page.PhotoOK {
		t.Errorf("the photo from photoUrl does not show")
	}
	if page.ScrollW > 390 || len(page.Overflows) > 0 {
		t.Errorf("the page is wider than the phone: %d px; overflowing: %v", page.ScrollW, page.Overflows)
	}

	// fill types into the emptied inputs, as a user would, and submits.
	fill := func(uid string, answers ...string) {
		t.Helper()
		eval[bool](t, ctx, `(() => { for (const i of document.querySelectorAll('#identity input')) i.value = ''; return true; })()`)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("uid"), uid))
		for i, a := range answers {
			do(t, ctx, chromedp.SendKeys(chromedp.JSPath(fmt.Sprintf(`document.querySelectorAll('.answer')[%d]`, i)), a))
		}
		do(t, ctx, chromedp.Click(chromedp.ID("redeem")))
	}

	// Wrong answers: the attempts left, twice.
	fill("ada@example.com", "Rex", "Green")
	waitText(t, ctx, "#error", "The answers do not match. 4 attempts left.", 10*time.Second)
	fill("ADA@example.com", "Felix", "Blue")
	waitText(t, ctx, "#error", "The answers do not match. 3 attempts left.", 10*time.Second)
	if got := eval[string](t, ctx, `document.querySelector('#attempts').textContent`); got != "3 attempts left." {
		t.Errorf("#attempts = %q", got)
	}

	// Right answers: the card.
	fill(" ada@example.com ", "rex", "BLUE")
	waitJS(t, ctx, `document.querySelector('#code') && document.querySelector('#code').width > 0`, 10*time.Second)
	fake.mu.Lock()
	keys := append([]string(nil), fake.keys...)
	fake.mu.Unlock()
	if len(keys) != 3 || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("the page did not reuse one device key across attempts: %q", keys)
	}
	if _, err := parseJWK(keys[0]); err != nil {
		t.Errorf("devicePublicKey: %v", err)
	}
	var jwk map[string]any
	json.Unmarshal([]byte(keys[0]), &jwk)
	if len(jwk) != 4 {
		t.Errorf("devicePublicKey has members beyond kty, crv, x, y: %s", keys[0])
	}

	loc := eval[string](t, ctx, `location.href`)
	if loc != srv.URL+"/wallet/" {
		t.Errorf("address after redeeming: %s", loc)
	}
	card := eval[struct {
		Text       string `json:"text"`
		Barcode    string `json:"barcode"`
		BarcodeW   int    `json:"barcodeW"`
		Caption    string `json:"caption"`
		HTMLHasLC1 bool   `json:"htmlHasLC1"`
		ScrollW    int    `json:"scrollW"`
	}](t, ctx, `(async () => {
		const b = document.querySelector('#barcode');
		if (!b.complete) await new Promise((r) => { b.onload = b.onerror = r; });
		return {
			text: document.querySelector('main').textContent,
			barcode: b.src.slice(0, 22),
			barcodeW: b.naturalWidth,
			caption: b.closest('figure').querySelector('figcaption').textContent,
			htmlHasLC1: document.documentElement.outerHTML.includes('LC1.'),
			scrollW: document.documentElement.scrollWidth,
		};
	})()`)
	for _, want := range []string{"Acme Gymnasium", "Staff", "Lovelace", "0012345"} {
		if !strings.Contains(card.Text, want) {
			t.Errorf("card view lacks %q:\n%s", want, card.Text)
		}
	}
	if card.Barcode != "data:image/png;base64," || card.BarcodeW != 240 || !strings.Contains(card.Caption, "Code 128") {
		t.Errorf("barcode: %+v", card)
	}
	if card.HTMLHasLC1 {
		t.Errorf("the code text is in the DOM")
	}
	if card.ScrollW > 390 {
		t.Errorf("the card view is %d px wide", card.ScrollW)
	}

	// The key is stored as a non-extractable CryptoKey.
	stored := eval[struct {
		N           int    `json:"n"`
		Type        string `json:"type"`
		Extractable bool   `json:"extractable"`
		Algorithm   string `json:"algorithm"`
		Curve       string `json:"curve"`
		Usages      string `json:"usages"`
	}](t, ctx, `new Promise((resolve, reject) => {
		const open = indexedDB.open('lintel-wallet');
		open.onerror = () => reject(open.error);
		open.onsuccess = () => {
			const all = open.result.transaction('cards').objectStore('cards').getAll();
			all.onsuccess = () => {
				const k = all.result[0].privateKey;
				resolve({n: all.result.length, type: k.type, extractable: k.extractable, algorithm: k.algorithm.name, curve: k.algorithm.namedCurve, usages: k.usages.join(',')});
				open.result.close();
			};
		};
	})`)
	if stored.N != 1 || stored.Type != "private" || stored.Extractable || stored.Algorithm != "ECDSA" || stored.Curve != "P-256" || stored.Usages != "sign" {
		t.Errorf("stored key: %+v", stored)
	}

	// The rotating code.
	first := checkCode(t, ctx, fake)
	deadline := time.Now().Add(8 * time.Second)
	var second code
	for {
		time.Sleep(500 * time.Millisecond)
		second = checkCode(t, ctx, fake)
		if second.ts != first.ts || time.Now().After(deadline) {
			break
		}
	}
	if second.ts <= first.ts || second.credential != first.credential {
		t.Errorf("the code did not rotate: %d then %d", first.ts, second.ts)
	}
	if cd := eval[string](t, ctx, `document.querySelector('#countdown').textContent`); !strings.HasPrefix(cd, "New code in ") {
		t.Errorf("countdown %q", cd)
	}

	// A reload shows the card from IndexedDB, signed with the same key.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/"))
	waitJS(t, ctx, `document.querySelector('#code') && document.querySelector('#code').width > 0`, 10*time.Second)
	if again := checkCode(t, ctx, fake); again.credential != first.credential {
		t.Errorf("after a reload the code has another credential")
	}

	if p := problems(); len(p) > 0 {
		t.Errorf("console errors: %q", p)
	}

	// Offline: the service worker serves the app shell, the card still shows.
	waitJS(t, ctx, `navigator.serviceWorker.controller && caches.keys().then(async (names) => {
		for (const n of names) { if (await (await caches.open(n)).match('/wallet/static/qr.js')) return true; }
		return false;
	})`, 15*time.Second)
	srv.Close()
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/"))
	waitJS(t, ctx, `document.querySelector('#code') && document.querySelector('#code').width > 0`, 10*time.Second)
	if offline := checkCode(t, ctx, fake); offline.credential != first.credential {
		t.Errorf("offline the code has another credential")
	}
}

// TestWalletPageProblems covers the error paths, on an origin of its own
// (so with empty storage).
func TestWalletPageProblems(t *testing.T) {
	t.Parallel()
	fake := newFakeServer(t)
	mux := http.NewServeMux()
	mux.Handle("/wallet/", Handler())
	mux.Handle("/graphql", fake)
	mux.HandleFunc("/test/photo.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(photoPNG())
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := testbrowser.New(t)
	problems := consoleProblems(ctx)

	const invalid = "This invitation link is not valid any more. Ask your card administrator for a new one."
	const lockedMsg = "This invitation is locked after too many failed attempts."

	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/nonesuch"))
	waitText(t, ctx, "#error", invalid, 10*time.Second)
	if eval[bool](t, ctx, `!!document.querySelector('#identity')`) {
		t.Errorf("a form for an unknown link")
	}

	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/locked"))
	waitText(t, ctx, "#error", lockedMsg, 10*time.Second)

	answer := func(uid string, answers ...string) {
		t.Helper()
		waitJS(t, ctx, `document.querySelector('#identity')`, 10*time.Second)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("uid"), uid))
		for i, a := range answers {
			do(t, ctx, chromedp.SendKeys(chromedp.JSPath(fmt.Sprintf(`document.querySelectorAll('.answer')[%d]`, i)), a))
		}
		do(t, ctx, chromedp.Click(chromedp.ID("redeem")))
	}

	// Rate limited: the message, and the form stays usable.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/busy"))
	answer("ada@example.com", "Rex", "Blue")
	waitText(t, ctx, "#error", "Too many attempts from this network; try again later", 10*time.Second)
	if eval[bool](t, ctx, `document.querySelector('#redeem').disabled`) {
		t.Errorf("the form is disabled after RATE_LIMITED")
	}

	// An empty field is caught before asking the server.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/last"))
	answer("ada@example.com", "Rex")
	waitText(t, ctx, "#error", "Fill in every field.", 10*time.Second)

	// The last attempt wrong: locked, the form disabled.
	do(t, ctx, chromedp.SendKeys(chromedp.JSPath(`document.querySelectorAll('.answer')[1]`), "Red"), chromedp.Click(chromedp.ID("redeem")))
	waitText(t, ctx, "#error", lockedMsg, 10*time.Second)
	if !eval[bool](t, ctx, `document.querySelector('#redeem').disabled && document.querySelector('#uid').disabled`) {
		t.Errorf("the form is still enabled after the invitation locked")
	}

	// An expired credential: the card shows as expired, with no code.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/expired"))
	answer("ada@example.com", "Rex", "Blue")
	waitJS(t, ctx, `document.querySelector('#expired')`, 10*time.Second)
	text := eval[string](t, ctx, `document.querySelector('main').innerText`)
	if !strings.Contains(strings.ToLower(text), "expired") || eval[bool](t, ctx, `!!document.querySelector('#code')`) {
		t.Errorf("expired card:\n%s", text)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/"))
	waitJS(t, ctx, `document.querySelector('#expired')`, 10*time.Second)

	// The used link is gone.
	do(t, ctx, chromedp.Navigate(srv.URL+"/wallet/invite/expired"))
	waitText(t, ctx, "#error", invalid, 10*time.Second)

	if p := problems(); len(p) > 0 {
		t.Errorf("console errors: %q", p)
	}
}
