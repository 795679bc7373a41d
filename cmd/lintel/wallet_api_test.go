package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/internal/invitations"
)

// Invitation and credential API tests without a browser: the phone is
// played by Go code holding a P-256 key, as the wallet page does.

const walletInvitationQuery = `query($t: String!) { walletInvitation(token: $t) {
	organisation templateName expiresAt attemptsLeft uniqueIdentifierLabel securityQuestions frontFields { label value } photoUrl } }`

const redeemMutation = `mutation($t: String!, $u: String!, $a: [String!]!, $k: String!) {
	redeemInvitation(token: $t, uniqueIdentifier: $u, answers: $a, devicePublicKey: $k) {
		credential expiresAt codeWindowSeconds card { organisation templateName cardId barcodeValue symbology barcodeImage photo frontFields { label value } } } }`

// device is a phone's key pair.
type device struct {
	key *ecdsa.PrivateKey
	jwk string
}

func newDevice(t *testing.T) device {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	require.NoError(t, err)
	jwk, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(pub[1:33]), "y": base64.RawURLEncoding.EncodeToString(pub[33:])})
	return device{key: k, jwk: string(jwk)}
}

// code is what the phone would show now.
func (d device) code(t *testing.T, credential string) string {
	t.Helper()
	c, err := credentials.SignCode(credential, time.Now(), d.key)
	require.NoError(t, err)
	return c
}

func tokenOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// walletSetup is a server with a mailbox, an organisation, an admin and an
// operator, a template and one record with two security questions.
type walletSetup struct {
	s         *testServer
	mb        *mailbox
	admin, op *gqlClient
	tpl, rec  string
}

func newWalletSetup(t *testing.T, env map[string]string) *walletSetup {
	t.Helper()
	mb := startMailbox(t)
	if env == nil {
		env = map[string]string{}
	}
	env["LINTEL_SMTP_ADDR"], env["LINTEL_SMTP_TLS"] = mb.Addr, "none"
	s := newTestServer(t, env)
	org := s.org("Acme")
	w := &walletSetup{s: s, mb: mb, admin: s.operator(org, "admin@acme.test", caller.RoleAdmin), op: s.operator(org, "op@acme.test", caller.RoleOperator)}
	w.tpl = w.admin.createTemplate(walletTemplate)
	w.rec = addWalletRecord(t, w.op, w.tpl, "1001", "ada@acme.test", "Ada Lovelace")
	return w
}

// invite invites the record and returns the token of the n-th e-mail
// (0-based) it received.
func (w *walletSetup) invite(t *testing.T, rec, email string, n int) string {
	t.Helper()
	w.op.do(`mutation($id: ID!) { inviteRecord(id: $id) { id } }`, vars{"id": rec}).requireOK(t)
	return tokenOf(inviteLink(t, w.mb.waitFor(t, email, n)))
}

func TestInvitationLocksAfterFiveWrongAnswers(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	tok := w.invite(t, w.rec, "ada@acme.test", 0)
	anon := w.s.anonymous()

	res := anon.do(walletInvitationQuery, vars{"t": tok}).requireOK(t)
	require.Equal(t, "Acme", res.str("walletInvitation.organisation"))
	require.Equal(t, "Badge", res.str("walletInvitation.templateName"))
	require.Equal(t, 5, res.num("walletInvitation.attemptsLeft"))
	require.Equal(t, "E-mail address", res.str("walletInvitation.uniqueIdentifierLabel"))
	require.Equal(t, []any{"Favourite colour?", "Home town?"}, res.get("walletInvitation.securityQuestions"))
	require.Equal(t, []any{map[string]any{"label": "Name", "value": "Ada Lovelace"}}, res.get("walletInvitation.frontFields"))

	d := newDevice(t)
	// A malformed device key is refused before any answer is judged.
	e := anon.do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"x", "y"}, "k": `{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`}).requireCode(t, "VALIDATION_FAILED")
	require.Contains(t, e.fieldErrors(), "devicePublicKey")
	for left := 4; left >= 1; left-- {
		e := anon.do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"Dark Blue", "Basel"}, "k": d.jwk}).requireCode(t, "VALIDATION_FAILED")
		require.EqualValues(t, left, e.Extensions["attemptsLeft"], "%v", e)
	}
	// Too few answers count as wrong too; the fifth wrong try locks.
	anon.do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"Dark Blue"}, "k": d.jwk}).requireCode(t, "FAILED_PRECONDITION")
	// Locked: even the right answers are refused, and the page says so.
	anon.do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": d.jwk}).requireCode(t, "FAILED_PRECONDITION")
	anon.do(walletInvitationQuery, vars{"t": tok}).requireCode(t, "FAILED_PRECONDITION")
	res = w.admin.do(`{ auditEvents(filter: {action: "invitation.locked"}) { edges { node { targetId } } } }`, nil).requireOK(t)
	require.Len(t, res.get("auditEvents.edges"), 1)
	require.Equal(t, "INVITED", w.op.do(recQuery, vars{"id": w.rec}).requireOK(t).str("record.credentialState"))

	// A new invitation works; the locked link stays dead.
	tok2 := w.invite(t, w.rec, "ada@acme.test", 1)
	anon.do(walletInvitationQuery, vars{"t": tok}).requireCode(t, "NOT_FOUND")
	res = anon.do(redeemMutation, vars{"t": tok2, "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": d.jwk}).requireOK(t)
	require.NotEmpty(t, res.str("redeemInvitation.credential"))
	// Used once, the link is spent.
	anon.do(redeemMutation, vars{"t": tok2, "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": newDevice(t).jwk}).requireCode(t, "NOT_FOUND")
}

func TestRedeemedCredentialIsBoundToTheDeviceAndTheRecordsValidity(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	until := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	res := w.op.do(`query($id: ID!) { record(id: $id) { version } }`, vars{"id": w.rec}).requireOK(t)
	w.op.do(recUpdateMutation, vars{"id": w.rec, "v": res.num("record.version"), "in": vars{"expiresAt": until.Format(time.RFC3339)}}).requireOK(t)
	tok := w.invite(t, w.rec, "ada@acme.test", 0)
	d := newDevice(t)
	res = w.s.anonymous().do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"dark blue", "zurich\u0308"}, "k": d.jwk})
	// "zurich" + combining diaeresis is "zurïch", not "zürich": wrong.
	res.requireCode(t, "VALIDATION_FAILED")
	res = w.s.anonymous().do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"dark blue", "zu\u0308rich"}, "k": d.jwk}).requireOK(t)
	cred := res.str("redeemInvitation.credential")
	require.Equal(t, until.Format(time.RFC3339), res.str("redeemInvitation.expiresAt"), "the credential outlives the record")
	require.Equal(t, "1001", res.str("redeemInvitation.card.cardId"))
	require.Equal(t, "QR", res.str("redeemInvitation.card.symbology"))
	require.Equal(t, "1001", decodeDataURLQR(t, res.str("redeemInvitation.card.barcodeImage")))

	var claims struct {
		Sub, Cid, Aud, Iss string
		Nbf, Exp           int64
		Cnf                struct{ JWK map[string]string }
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(cred, ".")[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(payload, &claims))
	require.Equal(t, w.rec, claims.Sub)
	require.Equal(t, "1001", claims.Cid)
	require.Equal(t, until.Unix(), claims.Exp)
	require.Equal(t, w.s.URL, claims.Iss)
	var sent map[string]string
	require.NoError(t, json.Unmarshal([]byte(d.jwk), &sent))
	require.Equal(t, sent["x"], claims.Cnf.JWK["x"])

	// The device's code opens; the same credential with another device's
	// signature does not.
	res = w.op.do(walletCodeQuery, vars{"c": d.code(t, cred)}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)
	res = w.op.do(walletCodeQuery, vars{"c": newDevice(t).code(t, cred)}).requireOK(t)
	require.Equal(t, "BAD_SIGNATURE", res.str("verifyCredentialCode.reason"))
	res = w.op.do(walletCodeQuery, vars{"c": "LC1.garbage"}).requireOK(t)
	require.Equal(t, "BAD_SIGNATURE", res.str("verifyCredentialCode.reason"))
	// A viewer's console may not check codes.
	viewer := w.s.operator(uuidOfOrg(t, w), "viewer@acme.test", caller.RoleViewer)
	viewer.do(walletCodeQuery, vars{"c": d.code(t, cred)}).requireCode(t, "FORBIDDEN")

	// Expiry: once the record's validity has ended, the expiry job moves
	// the credential to EXPIRED and lists it in the feed.
	_, err = w.s.DB.Pool.Exec(context.Background(), `UPDATE card_records SET expires_at = now() - interval '1 second' WHERE id = $1`, w.rec)
	require.NoError(t, err)
	n, err := invitations.Expire(context.Background(), w.s.DB)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "EXPIRED", w.op.do(recQuery, vars{"id": w.rec}).requireOK(t).str("record.credentialState"))
	res = w.admin.do(`{ revocations { items { reason recordId } } }`, nil).requireOK(t)
	require.Equal(t, []any{map[string]any{"reason": "EXPIRED", "recordId": w.rec}}, res.get("revocations.items"))
	res = w.op.do(walletCodeQuery, vars{"c": d.code(t, cred)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))
}

func uuidOfOrg(t *testing.T, w *walletSetup) uuid.UUID {
	t.Helper()
	var org uuid.UUID
	require.NoError(t, w.s.DB.Pool.QueryRow(context.Background(), `SELECT org_id FROM card_records WHERE id = $1`, w.rec).Scan(&org))
	return org
}

func decodeDataURLQR(t *testing.T, dataURL string) string {
	t.Helper()
	const prefix = "data:image/png;base64,"
	require.True(t, strings.HasPrefix(dataURL, prefix), "not a PNG data URL: %.40s", dataURL)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, prefix))
	require.NoError(t, err)
	return decodeQRPNG(t, raw)
}

func decodeQRPNG(t *testing.T, raw []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	require.NoError(t, err)
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	require.NoError(t, err)
	r, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	require.NoError(t, err)
	return r.GetText()
}

func TestExpiredAndGuessedInvitationLinksGetNowhere(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	tok := w.invite(t, w.rec, "ada@acme.test", 0)
	anon := w.s.anonymous()
	anon.do(walletInvitationQuery, vars{"t": tok}).requireOK(t)

	// Seven days later the link is dead.
	_, err := w.s.DB.Pool.Exec(context.Background(), `UPDATE invitations SET expires_at = now() - interval '1 second' WHERE record_id = $1`, w.rec)
	require.NoError(t, err)
	anon.do(walletInvitationQuery, vars{"t": tok}).requireCode(t, "NOT_FOUND")
	anon.do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": newDevice(t).jwk}).requireCode(t, "NOT_FOUND")

	// A fresh one works, but not for a guesser: after a run of wrong tokens
	// from one address, that address is shut out, even with a valid token.
	fresh := w.invite(t, w.rec, "ada@acme.test", 1)
	anon.do(walletInvitationQuery, vars{"t": fresh}).requireOK(t)
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		res := anon.do(walletInvitationQuery, vars{"t": base64.RawURLEncoding.EncodeToString(b)})
		require.NotEmpty(t, res.Errors)
		switch code := res.Errors[0].Extensions["code"]; code {
		case "NOT_FOUND":
		case "RATE_LIMITED":
			limited = true
			require.Greater(t, i, 20, "limited too early")
		default:
			t.Fatalf("guess %d: %v", i, code)
		}
	}
	require.True(t, limited, "40 wrong tokens from one address were not rate limited")
	anon.do(walletInvitationQuery, vars{"t": fresh}).requireCode(t, "RATE_LIMITED")
	anon.do(walletInvitationQuery, vars{"t": "short"}).requireCode(t, "RATE_LIMITED")
}

func TestInvitingRespectsRolesStatesAndTenants(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	const invite = `mutation($id: ID!) { inviteRecord(id: $id) { credentialState } }`
	viewer := w.s.operator(uuidOfOrg(t, w), "viewer@acme.test", caller.RoleViewer)
	viewer.do(invite, vars{"id": w.rec}).requireCode(t, "FORBIDDEN")
	other := w.s.operator(w.s.org("Other"), "op@other.test", caller.RoleOperator)
	other.do(invite, vars{"id": w.rec}).requireCode(t, "NOT_FOUND")
	other.do(`mutation($id: ID!) { resetCredential(recordId: $id) { id } }`, vars{"id": w.rec}).requireCode(t, "NOT_FOUND")
	w.op.do(`mutation($id: ID!) { resetCredential(recordId: $id) { id } }`, vars{"id": w.rec}).requireCode(t, "FAILED_PRECONDITION")

	suspended := addWalletRecord(t, w.op, w.tpl, "1002", "bob@acme.test", "Bob")
	w.op.do(recStatusMutation("suspendRecord"), vars{"id": suspended}).requireOK(t)
	w.op.do(invite, vars{"id": suspended}).requireCode(t, "FAILED_PRECONDITION")

	// inviteRecords invites the never-invited active records that match.
	w.op.do(invite, vars{"id": w.rec}).requireOK(t)
	addWalletRecord(t, w.op, w.tpl, "1003", "cy@acme.test", "Cy")
	addWalletRecord(t, w.op, w.tpl, "1004", "di@acme.test", "Di")
	res := w.op.do(`mutation($t: ID!, $f: RecordFilter) { inviteRecords(templateId: $t, filter: $f) }`, vars{"t": w.tpl, "f": vars{"search": "cy@"}}).requireOK(t)
	require.Equal(t, 1, res.num("inviteRecords"))
	res = w.op.do(`mutation($t: ID!) { inviteRecords(templateId: $t) }`, vars{"t": w.tpl}).requireOK(t)
	require.Equal(t, 1, res.num("inviteRecords"), "only di@ was still not invited (ada@ invited, bob@ suspended, cy@ done)")
	w.mb.waitFor(t, "cy@acme.test", 0)
	w.mb.waitFor(t, "di@acme.test", 0)
	require.Equal(t, 0, w.mb.count("bob@acme.test"))
	res = w.op.do(`query($t: ID!) { records(templateId: $t, filter: {credentialState: INVITED}) { totalCount } }`, vars{"t": w.tpl}).requireOK(t)
	require.Equal(t, 3, res.num("records.totalCount"))

	// A resend kills the previous link.
	first := tokenOf(inviteLink(t, w.mb.waitFor(t, "ada@acme.test", 0)))
	second := w.invite(t, w.rec, "ada@acme.test", 1)
	w.s.anonymous().do(walletInvitationQuery, vars{"t": first}).requireCode(t, "NOT_FOUND")
	w.s.anonymous().do(walletInvitationQuery, vars{"t": second}).requireOK(t)

	// The outbox is the ADMIN's: operators may not read it, other
	// organisations see nothing of it, and links never show.
	w.op.do(`{ outbox { nodes { id } } }`, nil).requireCode(t, "FORBIDDEN")
	res = w.admin.do(`{ outbox(first: 50) { nodes { kind recipient subject text status } hasNextPage } }`, nil).requireOK(t)
	nodes := res.get("outbox.nodes").([]any)
	require.Len(t, nodes, 4)
	for _, n := range nodes {
		m := n.(map[string]any)
		require.Equal(t, "INVITATION", m["kind"])
		require.NotContains(t, m["text"], "/wallet/invite/")
	}
	otherAdmin := w.s.operator(w.s.org("Third"), "admin@third.test", caller.RoleAdmin)
	res = otherAdmin.do(`{ outbox { nodes { id } } }`, nil).requireOK(t)
	require.Empty(t, res.get("outbox.nodes"))
}

func TestIssuingKeyRotationKeepsOldCredentialsValid(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	d := newDevice(t)
	tok := w.invite(t, w.rec, "ada@acme.test", 0)
	res := w.s.anonymous().do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": d.jwk}).requireOK(t)
	oldCred := res.str("redeemInvitation.credential")

	w.op.do(`mutation { rotateIssuingKey }`, nil).requireCode(t, "FORBIDDEN")
	newKid := w.admin.do(`mutation { rotateIssuingKey }`, nil).requireOK(t).str("rotateIssuingKey")
	jwks := fetchJWKS(t, w.s)
	require.Contains(t, jwks, newKid)
	require.Contains(t, jwks, kidOf(t, oldCred), "the retired key is still published")
	res = w.op.do(walletCodeQuery, vars{"c": d.code(t, oldCred)}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)

	rec2 := addWalletRecord(t, w.op, w.tpl, "1002", "bob@acme.test", "Bob")
	tok2 := w.invite(t, rec2, "bob@acme.test", 0)
	d2 := newDevice(t)
	res = w.s.anonymous().do(redeemMutation, vars{"t": tok2, "u": "bob@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": d2.jwk}).requireOK(t)
	newCred := res.str("redeemInvitation.credential")
	require.Equal(t, newKid, kidOf(t, newCred))
	res = w.op.do(walletCodeQuery, vars{"c": d2.code(t, newCred)}).requireOK(t)
	require.Equal(t, true, res.get("verifyCredentialCode.valid"), "%s", res.Raw)
	res = w.admin.do(`{ auditEvents(filter: {action: "issuing_key.rotate"}) { edges { node { targetId } } } }`, nil).requireOK(t)
	require.Len(t, res.get("auditEvents.edges"), 1)
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	require.NoError(t, err)
	var v struct{ Kid string }
	require.NoError(t, json.Unmarshal(h, &v))
	return v.Kid
}

func TestRecordBarcodes(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	res := w.op.do(`query($id: ID!) { record(id: $id) { barcodeValue barcode(size: 400) barcodeUrl } }`, vars{"id": w.rec}).requireOK(t)
	require.Equal(t, "1001", decodeDataURLQR(t, res.str("record.barcode")))
	url := w.s.URL + res.str("record.barcodeUrl") + "?size=500"
	resp, body := w.op.httpGet(url)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Equal(t, "1001", decodeQRPNG(t, body))
	resp, _ = w.s.anonymous().httpGet(url)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	other := w.s.operator(w.s.org("Other"), "op@other.test", caller.RoleOperator)
	resp, _ = other.httpGet(url)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// A value the template's symbology cannot encode is refused when saved.
	code128 := w.admin.createTemplate(vars{"name": "Linear", "symbology": "CODE128", "cardIdFormat": "DECIMAL",
		"fields": []vars{{"key": "name", "label": "Name", "type": "TEXT"}}})
	e := w.op.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": code128, "in": vars{
		"cardId": "77", "uniqueIdentifier": "x@acme.test", "barcodeValue": "Zürich-77"}}).requireCode(t, "VALIDATION_FAILED")
	require.Contains(t, e.fieldErrors()["input.barcodeValue"], "CODE128")
}

func TestImportInvitesNewRecordsAndTellsRemovedCardholders(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	// Cardholders identified by an ID number: the number, not the e-mail
	// address the link goes to, is what they prove they know.
	tpl := w.admin.createTemplate(vars{"name": "Students", "symbology": "QR", "cardIdFormat": "DECIMAL", "uniqueIdentifierKind": "ID_NUMBER",
		"fields": []vars{{"key": "name", "label": "Name", "type": "TEXT", "side": "FRONT"}}})
	add := func(card, id, email string) string {
		res := w.op.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": tpl, "in": vars{
			"cardId": card, "uniqueIdentifier": id, "recipientEmail": email, "fields": []vars{{"key": "name", "value": id}}}}).requireOK(t)
		return res.str("addRecord.id")
	}
	ada, bob := add("1001", "S-1001", "ada@acme.test"), add("1002", "S-1002", "bob@acme.test")
	d := newDevice(t)
	res := w.s.anonymous().do(redeemMutation, vars{"t": w.invite(t, ada, "ada@acme.test", 0), "u": "s-1001", "a": []string{}, "k": d.jwk}).requireOK(t)
	adaCred := res.str("redeemInvitation.credential")
	bobToken := w.invite(t, bob, "bob@acme.test", 0)

	// The file holds two new cardholders; Ada and Bob are missing from it.
	file := "card_id,unique_identifier,recipient_email,name\n2001,S-2001,cy@acme.test,Cy\n2002,S-2002,di@acme.test,Di\n"
	id := w.op.createImport(tpl, "people.csv", file, vars{"mode": "SYNC", "missingAction": "ARCHIVE", "sendInvitations": true, "notifyRemoved": true}).
		requireOK(t).str("createImport.id")
	counts := w.op.preview(id).requireOK(t).get("previewImport.counts").(map[string]any)
	require.Equal(t, 2.0, counts["create"])
	require.Equal(t, 2.0, counts["archive"])
	w.op.do(`mutation($id: ID!, $c: ImportConfirmInput) { startImport(id: $id, confirm: $c) { id } }`, vars{"id": id, "c": vars{"archive": 2, "delete": 0}}).requireOK(t)
	done := w.op.waitImport(id)
	require.Equal(t, "SUCCEEDED", done.str("import.outcome"), done.Raw)

	// New cardholders are invited, with working links.
	for _, email := range []string{"cy@acme.test", "di@acme.test"} {
		tok := tokenOf(inviteLink(t, w.mb.waitFor(t, email, 0)))
		res := w.s.anonymous().do(walletInvitationQuery, vars{"t": tok}).requireOK(t)
		require.Equal(t, "Students", res.str("walletInvitation.templateName"))
		require.Equal(t, "ID number", res.str("walletInvitation.uniqueIdentifierLabel"))
	}
	res = w.op.do(`query($t: ID!) { records(templateId: $t, filter: {credentialState: INVITED}) { edges { node { cardId } } } }`, vars{"t": tpl}).requireOK(t)
	require.ElementsMatch(t, []any{map[string]any{"node": map[string]any{"cardId": "2001"}}, map[string]any{"node": map[string]any{"cardId": "2002"}}}, res.get("records.edges"))

	// Removed cardholders are told, and their credentials and links end
	// in the same transaction as the archive.
	for _, email := range []string{"ada@acme.test", "bob@acme.test"} {
		m := w.mb.waitFor(t, email, 1)
		require.Contains(t, m.Text, "Students")
		require.NotRegexp(t, inviteLinkRE, m.Text)
	}
	res = w.op.do(walletCodeQuery, vars{"c": d.code(t, adaCred)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))
	w.s.anonymous().do(walletInvitationQuery, vars{"t": bobToken}).requireCode(t, "NOT_FOUND")
	res = w.admin.do(`{ revocations { items { recordId reason } } }`, nil).requireOK(t)
	require.Equal(t, []any{map[string]any{"recordId": ada, "reason": "ARCHIVED"}}, res.get("revocations.items"))
	for _, rec := range []string{ada, bob} {
		require.Equal(t, "REVOKED", w.op.do(recQuery, vars{"id": rec}).requireOK(t).str("record.credentialState"))
	}
}

func TestARecordWithoutSecurityQuestionsIsNotInvitedByEmailAlone(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	res := w.op.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": w.tpl, "in": vars{
		"cardId": "3001", "uniqueIdentifier": "eve@acme.test", "fields": []vars{{"key": "name", "value": "Eve"}}}}).requireOK(t)
	eve := res.str("addRecord.id")
	e := w.op.do(`mutation($id: ID!) { inviteRecord(id: $id) { id } }`, vars{"id": eve}).requireCode(t, "FAILED_PRECONDITION")
	require.Contains(t, e.Message, "security question")
	// inviteRecords passes over it (and invites Ada, who has questions).
	res = w.op.do(`mutation($t: ID!) { inviteRecords(templateId: $t) }`, vars{"t": w.tpl}).requireOK(t)
	require.Equal(t, 1, res.num("inviteRecords"))
	require.Equal(t, "NOT_INVITED", w.op.do(recQuery, vars{"id": eve}).requireOK(t).str("record.credentialState"))
}

func TestSuspendingAndDeletingEndCredentials(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	d := newDevice(t)
	res := w.s.anonymous().do(redeemMutation, vars{"t": w.invite(t, w.rec, "ada@acme.test", 0), "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": d.jwk}).requireOK(t)
	cred := res.str("redeemInvitation.credential")

	res = w.op.do(recStatusMutation("suspendRecord"), vars{"id": w.rec}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("suspendRecord.credentialState"))
	res = w.op.do(walletCodeQuery, vars{"c": d.code(t, cred)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))
	// Resuming does not bring the old phone back: a new invitation does.
	res = w.op.do(recStatusMutation("resumeRecord"), vars{"id": w.rec}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("resumeRecord.credentialState"))
	res = w.op.do(walletCodeQuery, vars{"c": d.code(t, cred)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))

	d2 := newDevice(t)
	res = w.s.anonymous().do(redeemMutation, vars{"t": w.invite(t, w.rec, "ada@acme.test", 1), "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": d2.jwk}).requireOK(t)
	cred2 := res.str("redeemInvitation.credential")
	w.op.do(recStatusMutation("archiveRecord"), vars{"id": w.rec}).requireOK(t)
	w.op.do(recDeleteMutation, vars{"id": w.rec}).requireOK(t)
	res = w.op.do(walletCodeQuery, vars{"c": d2.code(t, cred2)}).requireOK(t)
	require.Equal(t, "REVOKED", res.str("verifyCredentialCode.reason"))
	res = w.admin.do(`{ revocations { items { reason } } }`, nil).requireOK(t)
	require.Equal(t, []any{map[string]any{"reason": "SUSPENDED"}, map[string]any{"reason": "ARCHIVED"}}, res.get("revocations.items"),
		"deleting an archived record adds nothing: its credential already ended")
}
