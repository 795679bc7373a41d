package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

// Gateway API tests: registration and tokens, the access-list feed, access
// events and reader state, through the real HTTP and WebSocket endpoint.

const accessListQuery = `query($s: String, $n: Int) { accessList(since: $s, first: $n) {
	entries { version recordId cardId status validFrom expiresAt removed } full cursor hasMore version issuingKeys { kid publicKey retired } } }`

// gatewayFor registers a gateway and returns a client using its token.
func gatewayFor(t *testing.T, s *testServer, admin *gqlClient, site, name string) (*gqlClient, string) {
	t.Helper()
	res := admin.do(`mutation($s: String!, $n: String!) { createGateway(site: $s, name: $n) { gateway { id site name } token } }`,
		vars{"s": site, "n": name}).requireOK(t)
	tok := res.str("createGateway.token")
	require.True(t, strings.HasPrefix(tok, "lgw_"), "token %q", tok)
	gw := s.anonymous()
	gw.Token = tok
	return gw, res.str("createGateway.gateway.id")
}

// syncAll follows the access list from cursor until it has nothing more,
// returning the entries by record and the final cursor.
func syncAll(t *testing.T, gw *gqlClient, cursor *string, pageSize int) (map[string]map[string]any, string, int) {
	t.Helper()
	out := map[string]map[string]any{}
	pages := 0
	for {
		v := vars{"n": pageSize}
		if cursor != nil {
			v["s"] = *cursor
		}
		res := gw.do(accessListQuery, v).requireOK(t)
		pages++
		for _, e := range res.get("accessList.entries").([]any) {
			m := e.(map[string]any)
			out[m["recordId"].(string)] = m
		}
		c := res.str("accessList.cursor")
		cursor = &c
		if res.get("accessList.hasMore") != true {
			return out, c, pages
		}
		require.Less(t, pages, 100, "the feed never ends")
	}
}

func TestGatewaysSyncTheAccessListAndReportEvents(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	op := s.operator(org, "op@acme.test", caller.RoleOperator)
	viewer := s.operator(org, "viewer@acme.test", caller.RoleViewer)
	tpl := admin.createTemplate(staffTemplate)
	var recs []string
	for i, name := range []string{"Ada", "Bob", "Cy", "Di", "Eve"} {
		recs = append(recs, op.addRecord(tpl, "10"+string(rune('0'+i)), strings.ToLower(name)+"@acme.test", name))
	}
	// Another organisation's records never reach this gateway.
	other := s.org("Other")
	otherAdmin := s.operator(other, "admin@other.test", caller.RoleAdmin)
	otherAdmin.addRecord(otherAdmin.createTemplate(staffTemplate), "999", "zed@other.test", "Zed")

	op.do(`mutation($s: String!, $n: String!) { createGateway(site: $s, name: $n) { token } }`, vars{"s": "HQ", "n": "gw1"}).requireCode(t, "FORBIDDEN")
	gw, gwID := gatewayFor(t, s, admin, "HQ", "gw1")
	admin.do(`mutation($s: String!, $n: String!) { createGateway(site: $s, name: $n) { token } }`, vars{"s": "hq", "n": "GW1"}).requireCode(t, "CONFLICT")

	// A gateway is not an operator, and an operator is not a gateway.
	gw.do(`query($t: ID!) { records(templateId: $t) { totalCount } }`, vars{"t": tpl}).requireCode(t, "FORBIDDEN")
	admin.do(accessListQuery, nil).requireCode(t, "FORBIDDEN")

	// Full sync in pages of two, then the (empty) changes.
	list, cursor, pages := syncAll(t, gw, nil, 2)
	require.Len(t, list, 5)
	require.GreaterOrEqual(t, pages, 3)
	require.Equal(t, "100", list[recs[0]]["cardId"])
	require.Equal(t, "ACTIVE", list[recs[0]]["status"])
	require.True(t, strings.HasPrefix(cursor, "d:"), cursor)

	// Changes arrive as deltas: archive, suspend, delete, a new card ID.
	op.do(recStatusMutation("archiveRecord"), vars{"id": recs[1]}).requireOK(t)
	op.do(recStatusMutation("suspendRecord"), vars{"id": recs[2]}).requireOK(t)
	op.do(recStatusMutation("archiveRecord"), vars{"id": recs[3]}).requireOK(t)
	op.do(recDeleteMutation, vars{"id": recs[3]}).requireOK(t)
	v := op.do(recQuery, vars{"id": recs[4]}).requireOK(t).num("record.version")
	op.do(recUpdateMutation, vars{"id": recs[4], "v": v, "in": vars{"cardId": "777"}}).requireOK(t)
	res := gw.do(accessListQuery, vars{"s": cursor}).requireOK(t)
	var seen []string
	for _, e := range res.get("accessList.entries").([]any) {
		m := e.(map[string]any)
		seen = append(seen, m["cardId"].(string)+":"+m["status"].(string)+":"+map[bool]string{true: "removed", false: "present"}[m["removed"] == true])
	}
	require.Equal(t, []string{"101:ARCHIVED:present", "102:SUSPENDED:present", "103:ARCHIVED:present", "103:ARCHIVED:removed", "104:ACTIVE:removed", "777:ACTIVE:present"}, seen)
	require.False(t, res.get("accessList.hasMore").(bool))
	next := res.str("accessList.cursor")
	res = gw.do(accessListQuery, vars{"s": next}).requireOK(t)
	require.Empty(t, res.get("accessList.entries"), "nothing new after the last cursor")
	gw.do(accessListQuery, vars{"s": "d:abc"}).requireCode(t, "VALIDATION_FAILED")

	// Events: stored once however often they are sent.
	evs := []vars{
		{"id": uuid.NewString(), "readerId": "front", "door": "Front door", "at": time.Now().UTC().Format(time.RFC3339Nano), "kind": "CARD",
			"cardId": "100", "recordId": recs[0], "decision": "GRANTED"},
		{"id": uuid.NewString(), "readerId": "front", "door": "Front door", "at": time.Now().UTC().Format(time.RFC3339Nano), "kind": "CARD",
			"cardId": "101", "recordId": recs[1], "decision": "DENIED", "reason": "ARCHIVED"},
	}
	const report = `mutation($e: [AccessEventInput!]!) { reportAccessEvents(events: $e) }`
	require.Equal(t, 2, gw.do(report, vars{"e": evs}).requireOK(t).num("reportAccessEvents"))
	require.Equal(t, 0, gw.do(report, vars{"e": evs}).requireOK(t).num("reportAccessEvents"), "a retried batch stores nothing twice")
	op.do(report, vars{"e": evs}).requireCode(t, "FORBIDDEN")
	e := gw.do(report, vars{"e": []vars{{"id": "nope", "readerId": "front", "at": time.Now().Format(time.RFC3339), "kind": "CARD"}}}).requireCode(t, "VALIDATION_FAILED")
	require.Contains(t, e.fieldErrors(), "events[0].id")
	res = viewer.do(`{ accessEvents(filter: {decision: DENIED}) { nodes { readerId door cardId decision reason record { id } } hasNextPage } }`, nil).requireOK(t)
	require.Equal(t, []any{map[string]any{"readerId": "front", "door": "Front door", "cardId": "101", "decision": "DENIED", "reason": "ARCHIVED",
		"record": map[string]any{"id": recs[1]}}}, res.get("accessEvents.nodes"))
	res = otherAdmin.do(`{ accessEvents { nodes { id } } }`, nil).requireOK(t)
	require.Empty(t, res.get("accessEvents.nodes"))

	// Heartbeats show the readers.
	gw.do(`mutation($r: [ReaderStatusInput!]!, $v: String) { reportGatewayStatus(readers: $r, accessListVersion: $v) }`,
		vars{"r": []vars{{"readerId": "front", "door": "Front door", "protocol": "OSDP", "online": true}, {"readerId": "back", "protocol": "EM4100", "online": false}}, "v": next}).requireOK(t)
	res = viewer.do(`{ gateways { id site name lastSeenAt syncedVersion readers { readerId online protocol } } }`, nil).requireOK(t)
	g := res.get("gateways").([]any)[0].(map[string]any)
	require.Equal(t, gwID, g["id"])
	require.NotNil(t, g["lastSeenAt"])
	require.Equal(t, strings.TrimPrefix(next, "d:"), g["syncedVersion"])
	require.Equal(t, []any{map[string]any{"readerId": "back", "online": false, "protocol": "EM4100"}, map[string]any{"readerId": "front", "online": true, "protocol": "OSDP"}}, g["readers"])

	// Rotation kills the old token at once; revocation kills the new one.
	res = admin.do(`mutation($id: ID!) { rotateGatewayToken(id: $id) { token } }`, vars{"id": gwID}).requireOK(t)
	gw.do(accessListQuery, nil).requireCode(t, "UNAUTHENTICATED")
	gw.Token = res.str("rotateGatewayToken.token")
	gw.do(accessListQuery, nil).requireOK(t)
	admin.do(`mutation($id: ID!) { revokeGateway(id: $id) { revokedAt } }`, vars{"id": gwID}).requireOK(t)
	resp, _ := gw.httpGetGraphQL(t)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// httpGetGraphQL sends an empty query with the client's token.
func (c *gqlClient) httpGetGraphQL(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	return c.httpGet(strings.TrimSuffix(c.URL, "/graphql") + "/graphql?query=%7B__typename%7D")
}

func TestAccessListChangedReachesASubscribedGatewayAtOnce(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	tpl := admin.createTemplate(staffTemplate)
	rec := admin.addRecord(tpl, "100", "ada@acme.test", "Ada")
	gw, _ := gatewayFor(t, s, admin, "HQ", "gw1")

	conn, _, err := wsDial(t, s.URL, "")
	require.NoError(t, err)
	defer conn.CloseNow()
	wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + gw.Token}})
	m, err := wsRead(t, conn, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "connection_ack", m["type"])
	wsSend(t, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { accessListChanged { kind } }`}})
	time.Sleep(200 * time.Millisecond) // the subscription is registered

	start := time.Now()
	admin.do(recStatusMutation("suspendRecord"), vars{"id": rec}).requireOK(t)
	m, err = wsRead(t, conn, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "next", m["type"], "%v", m)
	require.Less(t, time.Since(start), time.Second, "the push took too long")

	// An operator's token cannot subscribe to it.
	conn2, _, err := wsDial(t, s.URL, "")
	require.NoError(t, err)
	defer conn2.CloseNow()
	wsSend(t, conn2, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + admin.Token}})
	_, err = wsRead(t, conn2, 5*time.Second)
	require.NoError(t, err)
	wsSend(t, conn2, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { accessListChanged { kind } }`}})
	m, err = wsRead(t, conn2, 5*time.Second)
	require.NoError(t, err)
	payload, _ := m["payload"].(map[string]any)
	errs, _ := payload["errors"].([]any)
	require.NotEmpty(t, errs, "an operator subscribed to the gateway feed: %v", m)
	require.Equal(t, "FORBIDDEN", errs[0].(map[string]any)["extensions"].(map[string]any)["code"])
}
