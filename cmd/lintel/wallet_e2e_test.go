package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/testbrowser"
)

// The whole cardholder journey, end to end: an operator invites a record,
// the e-mail reaches a real SMTP server, a real browser opens the link,
// answers (wrong, then right), receives the credential and shows a rotating
// QR code that a door (verifyCredentialCode) accepts once; old codes,
// replays, archived records and reset phones are refused.

const walletCodeQuery = `mutation($c: String!) { verifyCredentialCode(code: $c) { valid reason detail cardId codeTime record { id } } }`

// walletTemplate has one front field, one back field and a QR barcode.
var walletTemplate = vars{
	"name": "Badge", "symbology": "QR", "cardIdFormat": "DECIMAL",
	"fields": []vars{
		{"key": "name", "label": "Name", "type": "TEXT", "required": true, "side": "FRONT"},
		{"key": "room", "label": "Room", "type": "TEXT", "side": "BACK"},
	},
}

func addWalletRecord(t *testing.T, c *gqlClient, templateID, cardID, email, name string) string {
	t.Helper()
	res := c.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id credentialState } }`, vars{"t": templateID, "in": vars{
		"cardId": cardID, "uniqueIdentifier": email,
		"fields":            []vars{{"key": "name", "value": name}, {"key": "room", "value": "B-12"}},
		"securityQuestions": []vars{{"question": "Favourite colour?", "answer": "Dark Blue"}, {"question": "Home town?", "answer": "Zürich"}},
	}})
	res.requireOK(t)
	require.Equal(t, "NOT_INVITED", res.str("addRecord.credentialState"))
	return res.str("addRecord.id")
}

// browserDo runs actions in a tab, failing the test on error.
func browserDo(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// browserEval evaluates a JavaScript expression in a tab.
func browserEval[T any](ctx context.Context, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// walletAnswer types the identifier and answers into the wallet page's
// emptied identity form, as a person would, and submits it.
func walletAnswer(t *testing.T, ctx context.Context, uid string, answers ...string) {
	t.Helper()
	waitJS(t, ctx, `document.querySelector('#identity') && document.querySelector('#identity').offsetParent !== null`)
	_, err := browserEval[bool](ctx, `(() => { for (const i of document.querySelectorAll('#identity input')) i.value = ''; return true; })()`)
	require.NoError(t, err)
	browserDo(t, ctx, chromedp.SendKeys(chromedp.ID("uid"), uid))
	for i, a := range answers {
		browserDo(t, ctx, chromedp.SendKeys(chromedp.JSPath(`document.querySelectorAll('.answer')[`+strconv.Itoa(i)+`]`), a))
	}
	browserDo(t, ctx, chromedp.Click(chromedp.ID("redeem")))
}

// waitJS waits until a JavaScript expression is true in the tab.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	var last error
	ok := false
	require.Eventually(t, func() bool {
		ok, last = browserEval[bool](ctx, `(() => !!(`+expr+`))()`)
		return last == nil && ok
	}, 15*time.Second, 100*time.Millisecond, "never true: %s (last error %v)", expr, last)
}

// walletCode reads the rotating code off the page's QR canvas.
func walletCode(t *testing.T, ctx context.Context) string {
	t.Helper()
	var code string
	var last error
	deadline := time.Now().Add(15 * time.Second)
	for {
		shotCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		png, err := testbrowser.Screenshot(shotCtx, "#code")
		cancel()
		if err == nil {
			code, err = testbrowser.DecodeQR(png)
		}
		if err == nil && strings.HasPrefix(code, "LC1.") {
			return code
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("no readable QR code on the wallet page (last: %v, %.40q); the page says:\n%s", last, code, pageText(t, ctx))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// nextWalletCode waits for the page to show a code other than prev.
func nextWalletCode(t *testing.T, ctx context.Context, prev string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c := walletCode(t, ctx); c != prev {
			return c
		}
		require.False(t, time.Now().After(deadline), "the wallet's code did not rotate")
		time.Sleep(500 * time.Millisecond)
	}
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	q, _ := json.Marshal(sel)
	w, _ := json.Marshal(want)
	waitJS(t, ctx, `(document.querySelector(`+string(q)+`) || {}).textContent?.includes(`+string(w)+`)`)
}

// pageText is the page's visible text.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := browserEval[string](ctx, `document.body.innerText`)
	require.NoError(t, err)
	return s
}

func TestWalletJourneyFromInvitationToDoor(t *testing.T) {
	mb := startMailbox(t)
	s := newTestServer(t, map[string]string{"LINTEL_SMTP_ADDR": mb.Addr, "LINTEL_SMTP_TLS": "none", "LINTEL_CODE_WINDOW": "8s"})
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	op := s.operator(org, "op@acme.test", caller.RoleOperator)
	tpl := admin.createTemplate(walletTemplate)
	rec := addWalletRecord(t, op, tpl, "1001", "Ada@Acme.test", "Ada Lovelace")

	// Invite: the state moves and the e-mail carries a working link.
	res := op.do(`mutation($id: ID!) { inviteRecord(id: $id) { credentialState } }`, vars{"id": rec}).requireOK(t)
	require.Equal(t, "INVITED", res.str("inviteRecord.credentialState"))
	m := mb.waitFor(t, "ada@acme.test", 0)
	require.Contains(t, m.Subject, "Acme")
	link := inviteLink(t, m)
	require.True(t, strings.HasPrefix(link, s.URL+"/wallet/invite/"), "link %s is not on this server (%s)", link, s.URL)

	// The phone opens it: the card's front shows, the back does not.
	phone := testbrowser.New(t)
	browserDo(t, phone, chromedp.Navigate(link))
	waitText(t, phone, "body", "Ada Lovelace")
	body := pageText(t, phone)
	require.NotContains(t, body, "B-12", "a back-side field is shown before the identity check")
	require.Contains(t, body, "Favourite colour?")

	// Two wrong tries are counted...
	walletAnswer(t, phone, "ada@acme.test", "red", "Zürich")
	waitText(t, phone, "#error", "4 attempts left")
	walletAnswer(t, phone, "someone@else.test", "Dark Blue", "Zürich")
	waitText(t, phone, "#error", "3 attempts left")
	// ...and the right ones (case, spacing and Unicode form ignored) issue
	// the credential.
	walletAnswer(t, phone, "ADA@acme.test", "  dark   BLUE ", "ZÜRICH")
	code := walletCode(t, phone)
	location, err := browserEval[string](phone, `location.href`)
	require.NoError(t, err)
	require.Equal(t, s.URL+"/wallet/", location, "the token stays in the address bar")
	res = op.do(recQuery, vars{"id": rec}).requireOK(t)
	require.Equal(t, "ACTIVE", res.str("record.credentialState"))

	// The credential names its key, which the JWKS publishes.
	parts := strings.Split(code, ".")
	require.Len(t, parts, 6, "code %q", code)
	header, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var hdr struct{ Alg, Kid string }
	require.NoError(t, json.Unmarshal(header, &hdr))
	require.Equal(t, "EdDSA", hdr.Alg)
	jwks := fetchJWKS(t, s)
	require.Contains(t, jwks, hdr.Kid)

	// A door accepts the code once.
	res = op.do(walletCodeQuery, vars{"c": code}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)
	require.Equal(t, rec, res.str("verifyCredentialCode.record.id"))
	require.Equal(t, "1001", res.str("verifyCredentialCode.cardId"))
	res = op.do(walletCodeQuery, vars{"c": code}).requireOK(t)
	require.Equal(t, "REPLAYED", res.str("verifyCredentialCode.reason"))

	// A screenshot older than the window is refused.
	old := walletCode(t, phone)
	time.Sleep(9 * time.Second)
	res = op.do(walletCodeQuery, vars{"c": old}).requireOK(t)
	require.Equal(t, "STALE_CODE", res.str("verifyCredentialCode.reason"))
	// The page has moved on to a fresh code, which works.
	fresh := walletCode(t, phone)
	require.NotEqual(t, old, fresh)
	res = op.do(walletCodeQuery, vars{"c": fresh}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)

	// Another organisation's console cannot use it.
	other := s.operator(s.org("Other"), "op@other.test", caller.RoleOperator)
	res = other.do(walletCodeQuery, vars{"c": nextWalletCode(t, phone, fresh)}).requireOK(t)
	require.Equal(t, "BAD_SIGNATURE", res.str("verifyCredentialCode.reason"))

	// Reopening the wallet later shows the card from the phone's storage.
	browserDo(t, phone, chromedp.Navigate(s.URL+"/wallet/"))
	waitText(t, phone, "body", "Ada Lovelace")
	walletCode(t, phone)

	// Archiving revokes: the feed lists it and doors refuse the phone.
	op.do(recStatusMutation("archiveRecord"), vars{"id": rec}).requireOK(t)
	res = admin.do(`{ revocations { items { credentialId recordId reason } cursor hasMore } }`, nil).requireOK(t)
	items := res.get("revocations.items").([]any)
	require.Len(t, items, 1)
	require.Equal(t, rec, items[0].(map[string]any)["recordId"])
	require.Equal(t, "ARCHIVED", items[0].(map[string]any)["reason"])
	cursor := res.str("revocations.cursor")
	res = op.do(walletCodeQuery, vars{"c": walletCode(t, phone)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))
	res = op.do(recQuery, vars{"id": rec}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("record.credentialState"))

	// Restored, the record is invited again; a lost phone is reset: the
	// old device is refused and the new invitation works on a new phone.
	op.do(recStatusMutation("restoreRecord"), vars{"id": rec}).requireOK(t)
	op.do(`mutation($id: ID!) { inviteRecord(id: $id) { id } }`, vars{"id": rec}).requireOK(t)
	phone2 := testbrowser.New(t)
	browserDo(t, phone2, chromedp.Navigate(inviteLink(t, mb.waitFor(t, "ada@acme.test", 1))))
	walletAnswer(t, phone2, "ada@acme.test", "dark blue", "zürich")
	onPhone2 := walletCode(t, phone2)
	res = op.do(walletCodeQuery, vars{"c": onPhone2}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)

	res = op.do(`mutation($id: ID!) { resetCredential(recordId: $id) { credentialState } }`, vars{"id": rec}).requireOK(t)
	require.Equal(t, "RESET", res.str("resetCredential.credentialState"))
	res = op.do(walletCodeQuery, vars{"c": walletCode(t, phone2)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))
	res = admin.do(`query($c: String) { revocations(since: $c) { items { reason } } }`, vars{"c": cursor}).requireOK(t)
	require.Equal(t, []any{map[string]any{"reason": "RESET"}}, res.get("revocations.items"), "the feed continues after the cursor")

	phone3 := testbrowser.New(t)
	browserDo(t, phone3, chromedp.Navigate(inviteLink(t, mb.waitFor(t, "ada@acme.test", 2))))
	walletAnswer(t, phone3, "ada@acme.test", "Dark Blue", "Zürich")
	res = op.do(walletCodeQuery, vars{"c": walletCode(t, phone3)}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)
	res = op.do(recQuery, vars{"id": rec}).requireOK(t)
	require.Equal(t, "ACTIVE", res.str("record.credentialState"))
}

func fetchJWKS(t *testing.T, s *testServer) string {
	t.Helper()
	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var v struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	b, _ := json.Marshal(v)
	return string(b)
}
