package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

// The records page renderer (graph/records_page.go) must answer exactly
// what gqlgen's executor answers. Two servers share one database, one with
// the renderer and one without (--graphql-page-renderer off); every query
// here must get byte-identical responses from both, and the metrics must
// show which path answered — so the comparison cannot pass by the
// renderer quietly never running.
func TestTheRecordsPageRendererAnswersLikeTheExecutor(t *testing.T) {
	t.Parallel()
	fast := newTestServer(t, nil)
	plain := newTestServer(t, map[string]string{"DATABASE_URL": fast.DBURL, "LINTEL_GRAPHQL_PAGE_RENDERER": "off"})
	org := fast.org("Acme")
	admin := fast.operator(org, "admin@acme.test", caller.RoleAdmin)
	viewer := fast.operator(org, "viewer@acme.test", caller.RoleViewer)
	tmpl := vars{}
	for k, v := range staffTemplate {
		tmpl[k] = v
	}
	tmpl["description"] = "Badges with \"quotes\", a back\\slash, <html> & a\nnewline"
	tid := admin.createTemplate(tmpl)

	// Records with every kind of value the renderer writes: escapes and
	// control characters, non-ASCII, optional times set and unset,
	// security questions, locked fields, a photo, a suspended and an
	// archived record.
	odd := []string{"Ada", "Zoë \"Z\" O'Neil", "back\\slash", "tab\there\nline", "ctrl\x01\x1f", "<b>&amp;</b>", "山田 Анна", ""}
	var ids []string
	for i, first := range odd {
		if first == "" {
			first = "Plain"
		}
		in := vars{
			"cardId": strconv.Itoa(100 + i), "uniqueIdentifier": fmt.Sprintf("holder%d@acme.test", i),
			"fields": []vars{{"key": "first_name", "value": first}, {"key": "last_name", "value": "Tester"},
				{"key": "dept", "value": "Sales"}, {"key": "grade", "value": strconv.Itoa(i)}},
		}
		if i%2 == 0 {
			in["validFrom"] = "2026-01-02T03:04:05.123456Z"
			in["securityQuestions"] = []vars{{"question": "Pet's \"name\"?", "answer": "Rex"}}
		}
		if i%3 == 0 {
			in["expiresAt"] = "2030-06-07T08:09:10Z"
			in["barcodeValue"] = "BC-" + strconv.Itoa(i)
		}
		res := admin.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": tid, "in": in}).requireOK(t)
		ids = append(ids, res.str("addRecord.id"))
	}
	admin.do(`mutation($id: ID!) { lockFields(id: $id, fields: ["first_name", "expires_at"]) { id } }`, vars{"id": ids[1]}).requireOK(t)
	admin.do(`mutation($id: ID!) { suspendRecord(id: $id) { id } }`, vars{"id": ids[2]}).requireOK(t)
	admin.do(`mutation($id: ID!) { archiveRecord(id: $id) { id } }`, vars{"id": ids[3]}).requireOK(t)
	var photo bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	require.NoError(t, png.Encode(&photo, img))
	admin.upload(`mutation($id: ID!, $p: Upload) { updateRecord(id: $id, version: 1, input: {}, photo: $p) { id } }`,
		vars{"id": ids[4]}, map[string][]byte{"p": photo.Bytes()}).requireOK(t)

	const everything = `query($t: ID!, $n: Int, $after: String, $yes: Boolean!, $key: String!) {
  __typename
  records(templateId: $t, first: $n, after: $after) {
    __typename totalCount
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    edges { __typename cursor node {
      __typename id cardId uniqueIdentifier barcodeValue recipientEmail securityQuestions validFrom expiresAt
      status credentialState lockedFields photoUrl barcodeUrl version createdAt updatedAt archivedAt
      byKey: field(key: $key) missing: field(key: "nope")
      fields { __typename key label value }
      template { __typename id name description symbology cardIdFormat uniqueIdentifierKind defaultValidityDays version createdAt updatedAt
        fields { __typename key label type required side options maxLength personal sensitive } }
      ...on CardRecord { cardId again: cardId }
      ...Extra
      skipped: cardId @skip(if: $yes)
      included: uniqueIdentifier @include(if: $yes)
    } }
  }
}
fragment Extra on CardRecord { status template { name } fields { value } }`
	first := map[string]any{"t": tid, "n": 3, "yes": true, "key": "first_name"}
	cases := []struct {
		name      string
		client    *gqlClient
		query     string
		variables map[string]any
		answered  string // who must have written the page on the fast server
	}{
		{"every field, fragments, aliases, directives", admin, everything, map[string]any{"t": tid, "n": 50, "yes": true, "key": "first_name"}, "renderer"},
		{"directives the other way", admin, everything, map[string]any{"t": tid, "n": 50, "yes": false, "key": "grade"}, "renderer"},
		{"a first page", admin, everything, first, "renderer"},
		{"backwards, filtered and ordered", viewer, `query($t: ID!) { records(templateId: $t, last: 2, orderBy: {field: CARD_ID, direction: DESC}, filter: {status: ACTIVE}) {
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { cardId status template { id } } } } }`, map[string]any{"t": tid}, "renderer"},
		{"two listings in one query", admin, `query($t: ID!) { a: records(templateId: $t, first: 1) { edges { node { cardId } } } b: records(templateId: $t, first: 2, orderBy: {field: UPDATED_AT}) { totalCount edges { node { id } } } }`, map[string]any{"t": tid}, "renderer"},
		{"an empty page", admin, `query($t: ID!) { records(templateId: $t, filter: {search: "no such holder"}) { totalCount pageInfo { hasNextPage startCursor } edges { cursor } } }`, map[string]any{"t": tid}, "renderer"},
		{"a field the renderer does not write", admin, `query($t: ID!) { records(templateId: $t, first: 2) { edges { node { cardId barcode(size: 64) } } } }`, map[string]any{"t": tid}, "executor"},
		{"a template of no one's", admin, `query($t: ID!) { records(templateId: $t) { edges { node { id } } } }`, map[string]any{"t": "00000000-0000-0000-0000-000000000001"}, "executor"},
		{"a bad cursor", admin, `query($t: ID!) { records(templateId: $t, after: "garbage") { edges { node { id } } } }`, map[string]any{"t": tid}, "executor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := renderedPages(t, fast)
			body, _ := json.Marshal(map[string]any{"query": c.query, "variables": c.variables})
			got := rawPost(t, fast, c.client.Token, body)
			want := rawPost(t, plain, c.client.Token, body)
			requireSameBytes(t, want, got)
			after := renderedPages(t, fast)
			require.Greater(t, after[c.answered], before[c.answered], "the page was written by the %s", c.answered)
		})
	}

	// A page after the first, with the cursor of the first: the same.
	res := admin.do(everything, first).requireOK(t)
	next := map[string]any{"t": tid, "n": 3, "after": res.str("records.pageInfo.endCursor"), "yes": true, "key": "first_name"}
	body, _ := json.Marshal(map[string]any{"query": everything, "variables": next})
	requireSameBytes(t, rawPost(t, plain, admin.Token, body), rawPost(t, fast, admin.Token, body))
	require.Contains(t, string(rawPost(t, fast, admin.Token, body)), `"hasPreviousPage":true`)
}

// requireSameBytes fails with where got first differs from want.
func requireSameBytes(t *testing.T, want, got []byte) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	from := max(0, i-120)
	t.Fatalf("the responses differ at byte %d of %d/%d:\nexecutor: …%s\nrenderer: …%s", i, len(want), len(got),
		want[from:min(len(want), i+80)], got[from:min(len(got), i+80)])
}

// rawPost posts a GraphQL request body and returns the response as is.
func rawPost(t *testing.T, s *testServer, token string, body []byte) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", out)
	return out
}

var pagesMetric = regexp.MustCompile(`(?m)^lintel_graphql_record_pages_total\{answered_by="(\w+)"\} (\d+)$`)

// renderedPages reads the server's count of records fields by who wrote them.
func renderedPages(t *testing.T, s *testServer) map[string]int {
	t.Helper()
	resp, err := s.client.Get(s.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]int{}
	for _, m := range pagesMetric.FindAllStringSubmatch(string(text), -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}
