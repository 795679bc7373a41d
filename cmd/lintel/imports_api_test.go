package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/imports"
)

const importFields = `id fileName rowCount encoding delimiter header outcome phase error errorCode
	mapping { column header field confidence }
	options { mode missingAction matchOn overwrite invalidRows }
	counts { create update unchanged archive delete invalid skipped conflict }
	previewCounts { create update unchanged archive delete invalid skipped conflict }`

// importTemplate is a small template keyed by e-mail with a required name.
var importTemplate = vars{
	"name": "Members", "symbology": "QR", "cardIdFormat": "DECIMAL",
	"fields": []vars{
		{"key": "first_name", "label": "First name", "type": "TEXT", "required": true},
		{"key": "last_name", "label": "Last name", "type": "TEXT"},
		{"key": "country", "label": "Country", "type": "COUNTRY"},
	},
}

func (c *gqlClient) createImport(tid, name, content string, options vars) *gqlResponse {
	c.t.Helper()
	v := vars{"t": tid, "o": options}
	return c.upload(`mutation($t: ID!, $f: Upload!, $o: ImportOptionsInput) { createImport(templateId: $t, file: $f, options: $o) { `+importFields+` } }`,
		v, map[string][]byte{"f": []byte(content)}, map[string]string{"f": name})
}

func (c *gqlClient) preview(id string) *gqlResponse {
	c.t.Helper()
	return c.do(`query($id: ID!) { previewImport(id: $id, invalidFirst: 100) { counts { create update unchanged archive delete invalid skipped conflict }
		samples { line key outcome changedFields changes { field old new } cardIdRead }
		invalidRows { edges { node { line key errors { column field reason } } } pageInfo { hasNextPage } } } }`, vars{"id": id})
}

// waitImport polls until the import has ended and returns it.
func (c *gqlClient) waitImport(id string) *gqlResponse {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := c.do(`query($id: ID!) { import(id: $id) { `+importFields+` } }`, vars{"id": id}).requireOK(c.t)
		if o := res.str("import.outcome"); o != "" && o != "RUNNING" {
			return res
		}
		require.True(c.t, time.Now().Before(deadline), "import %s did not finish: %s", id, res.Raw)
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *gqlClient) recordsByCard(tid string) map[string]map[string]any {
	c.t.Helper()
	res := c.do(`query($t: ID!) { records(templateId: $t, first: 500) { edges { node { cardId uniqueIdentifier status version expiresAt fields { key value } } } } }`, vars{"t": tid}).requireOK(c.t)
	out := map[string]map[string]any{}
	for _, e := range res.get("records.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		fields := map[string]any{}
		for _, f := range n["fields"].([]any) {
			fm := f.(map[string]any)
			fields[fm["key"].(string)] = fm["value"]
		}
		n["fields"] = fields
		out[n["cardId"].(string)] = n
	}
	return out
}

func TestImportFromTheExampleCSV(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	ops := s.operator(s.org("Acme"), "ops@acme.test", caller.RoleOperator)
	admin := s.operator(s.org("Other"), "admin@other.test", caller.RoleAdmin)
	_ = admin
	tidAdmin := s.operator(mustOrg(t, s, "ops@acme.test"), "admin@acme.test", caller.RoleAdmin)
	tid := tidAdmin.createTemplate(importTemplate)

	example := ops.do(`query($t: ID!) { exampleCsv(templateId: $t) }`, vars{"t": tid}).requireOK(t).str("exampleCsv")
	require.True(t, strings.HasPrefix(example, "Card ID,Unique identifier,First name,Last name,Country"), example)

	res := ops.createImport(tid, "example.csv", example, nil).requireOK(t)
	id := res.str("createImport.id")
	require.Equal(t, 1, res.num("createImport.rowCount"))
	require.Equal(t, ",", res.str("createImport.delimiter"))
	for _, m := range res.get("createImport.mapping").([]any) {
		require.NotNil(t, m.(map[string]any)["field"], "every example column maps by itself: %v", m)
	}
	pv := ops.preview(id).requireOK(t)
	require.Equal(t, 1, pv.num("previewImport.counts.create"))
	require.Empty(t, ops.recordsByCard(tid), "a preview writes nothing")

	ops.do(`mutation($id: ID!) { startImport(id: $id) { outcome phase } }`, vars{"id": id}).requireOK(t)
	done := ops.waitImport(id)
	require.Equal(t, "SUCCEEDED", done.str("import.outcome"), done.Raw)
	require.Equal(t, 1, done.num("import.counts.create"))
	recs := ops.recordsByCard(tid)
	require.Contains(t, recs, "100042")
	require.Equal(t, "Ada", recs["100042"]["fields"].(map[string]any)["first_name"])

	t.Run("the results CSV names every line's outcome", func(t *testing.T) {
		resp, body := ops.httpGet(s.URL + "/imports/" + id + "/results.csv")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(body), "line,key,outcome")
		require.Contains(t, string(body), "2,100042,CREATE")
	})
	t.Run("the history keeps the import", func(t *testing.T) {
		h := ops.do(`query($t: ID) { imports(templateId: $t) { edges { node { id fileName fileSha256 createdBy } } } }`, vars{"t": tid}).requireOK(t)
		require.Equal(t, id, h.str("imports.edges.0.node.id"))
		require.Equal(t, "example.csv", h.str("imports.edges.0.node.fileName"))
		require.Len(t, h.str("imports.edges.0.node.fileSha256"), 64)
		require.Equal(t, "ops@acme.test", h.str("imports.edges.0.node.createdBy"))
	})
	t.Run("another organisation cannot see it", func(t *testing.T) {
		require.Nil(t, admin.do(`query($id: ID!) { import(id: $id) { id } }`, vars{"id": id}).requireOK(t).get("import"))
		admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireCode(t, "NOT_FOUND")
		resp, _ := admin.httpGet(s.URL + "/imports/" + id + "/results.csv")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
}

// mustOrg finds the organisation of an operator.
func mustOrg(t *testing.T, s *testServer, email string) [16]byte {
	t.Helper()
	var id [16]byte
	require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT org_id FROM operators WHERE email = $1`, email).Scan(&id))
	return id
}

func TestSyncImportArchivesMissingRecordsOnlyWhenConfirmed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	for i := 1; i <= 4; i++ {
		admin.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": tid, "in": vars{
			"cardId": fmt.Sprint(i), "uniqueIdentifier": fmt.Sprintf("m%d@acme.test", i), "fields": []vars{{"key": "first_name", "value": fmt.Sprint("M", i)}}}}).requireOK(t)
	}
	// 1 unchanged, 2 changed, 3 and 4 missing, 5 new.
	file := "card id;e-mail;first name\r\n1;m1@acme.test;M1\r\n2;m2@acme.test;Changed\r\n5;m5@acme.test;New\r\n"
	res := admin.createImport(tid, "sync.csv", file, vars{"mode": "SYNC", "missingAction": "ARCHIVE"}).requireOK(t)
	id := res.str("createImport.id")
	require.Equal(t, ";", res.str("createImport.delimiter"))

	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireCode(t, "FAILED_PRECONDITION")

	pv := admin.preview(id).requireOK(t)
	require.Equal(t, map[string]any{"create": 1.0, "update": 1.0, "unchanged": 1.0, "archive": 2.0, "delete": 0.0, "invalid": 0.0, "skipped": 0.0, "conflict": 0.0},
		pv.get("previewImport.counts"))
	var sawDiff bool
	for _, sm := range pv.get("previewImport.samples").([]any) {
		m := sm.(map[string]any)
		if m["outcome"] == "UPDATE" {
			sawDiff = true
			require.Equal(t, []any{map[string]any{"field": "first_name", "old": "M2", "new": "Changed"}}, m["changes"])
		}
	}
	require.True(t, sawDiff, "the preview shows the field-level change")

	e := admin.do(`mutation($id: ID!, $c: ImportConfirmInput) { startImport(id: $id, confirm: $c) { id } }`, vars{"id": id, "c": vars{"archive": 1, "delete": 0}}).requireCode(t, "FAILED_PRECONDITION")
	require.Equal(t, 2.0, e.Extensions["archive"], "the refusal names the real count")
	admin.do(`mutation($id: ID!, $c: ImportConfirmInput) { startImport(id: $id, confirm: $c) { id } }`, vars{"id": id, "c": vars{"archive": 2, "delete": 0}}).requireOK(t)
	done := admin.waitImport(id)
	require.Equal(t, "SUCCEEDED", done.str("import.outcome"), done.Raw)

	recs := admin.recordsByCard(tid)
	require.Equal(t, "ACTIVE", recs["1"]["status"])
	require.Equal(t, 1.0, recs["1"]["version"], "an unchanged record is not touched")
	require.Equal(t, "Changed", recs["2"]["fields"].(map[string]any)["first_name"])
	require.Equal(t, "ARCHIVED", recs["3"]["status"])
	require.Equal(t, "ARCHIVED", recs["4"]["status"])
	require.Equal(t, "New", recs["5"]["fields"].(map[string]any)["first_name"])
	require.Nil(t, recs["5"]["expiresAt"], "without a default validity an imported record does not expire")

	t.Run("the same file again changes nothing", func(t *testing.T) {
		again := admin.createImport(tid, "sync.csv", file, vars{"mode": "SYNC", "missingAction": "ARCHIVE"}).requireOK(t).str("createImport.id")
		counts := admin.preview(again).requireOK(t).get("previewImport.counts").(map[string]any)
		require.Equal(t, 3.0, counts["unchanged"])
		require.Equal(t, 0.0, counts["archive"], "already archived records are not archived again")
	})
}

func TestImportRowsAreCheckedOneByOne(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	admin.addRecord(tid, "77", "taken@acme.test", "Taken")
	file := strings.Join([]string{
		"Card ID,Email,First name,Country",
		"1,ok@acme.test,Ok,CH",
		"2x,bad-card@acme.test,Bad,CH",
		"3,not-an-email,Bad,CH",
		"4,nofirst@acme.test,,CH",
		"5,country@acme.test,Bad,XX",
		"1,dup@acme.test,Dup,CH",
		"6,taken@acme.test,Taken,CH",
		"7,short@acme.test",
	}, "\n") + "\n"
	id := admin.createImport(tid, "rows.csv", file, nil).requireOK(t).str("createImport.id")
	pv := admin.preview(id).requireOK(t)
	require.Equal(t, 1, pv.num("previewImport.counts.create"))
	require.Equal(t, 7, pv.num("previewImport.counts.invalid"))
	reasons := map[int]string{}
	for _, e := range pv.get("previewImport.invalidRows.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		var rs []string
		for _, er := range n["errors"].([]any) {
			rs = append(rs, er.(map[string]any)["reason"].(string))
		}
		reasons[int(n["line"].(float64))] = strings.Join(rs, "; ")
	}
	require.Contains(t, reasons[3], "bad card ID")
	require.Contains(t, reasons[4], "bad e-mail")
	require.Contains(t, reasons[5], "missing required value")
	require.Contains(t, reasons[6], "not an ISO 3166-1 country code")
	require.Contains(t, reasons[7], "duplicate card ID 1 inside the file (first on line 2)")
	require.Contains(t, reasons[8], "already used by the record with card ID 77")
	require.Contains(t, reasons[9], "the row has 2 cells but the header has 4")

	t.Run("ABORT imports nothing and keeps the reasons", func(t *testing.T) {
		admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
		done := admin.waitImport(id)
		require.Equal(t, "FAILED", done.str("import.outcome"))
		require.Equal(t, "VALIDATION_FAILED", done.str("import.errorCode"))
		require.Contains(t, done.str("import.error"), "7 invalid row(s)")
		require.Len(t, admin.recordsByCard(tid), 1)
	})
	t.Run("SKIP_INVALID imports the valid rows", func(t *testing.T) {
		admin.do(`mutation($id: ID!) { updateImport(id: $id, options: {invalidRows: SKIP_INVALID}) { id } }`, vars{"id": id}).requireOK(t)
		admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
		done := admin.waitImport(id)
		require.Equal(t, "SUCCEEDED", done.str("import.outcome"), done.Raw)
		recs := admin.recordsByCard(tid)
		require.Len(t, recs, 2)
		require.Contains(t, recs, "1")
	})
}

func TestAnEditMadeAfterThePreviewIsNotOverwritten(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	rid := admin.addRecord(tid, "1", "a@acme.test", "Before")
	id := admin.createImport(tid, "f.csv", "Card ID,Email,First name\n1,a@acme.test,FromFile\n", nil).requireOK(t).str("createImport.id")
	require.Equal(t, 1, admin.preview(id).requireOK(t).num("previewImport.counts.update"))
	admin.do(`mutation($id: ID!) { updateRecord(id: $id, version: 1, input: {fields: [{key: "first_name", value: "EditedByHand"}]}) { version } }`, vars{"id": rid}).requireOK(t)

	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
	done := admin.waitImport(id)
	require.Equal(t, "SUCCEEDED", done.str("import.outcome"), done.Raw)
	require.Equal(t, 1, done.num("import.counts.conflict"))
	require.Equal(t, "EditedByHand", admin.recordsByCard(tid)["1"]["fields"].(map[string]any)["first_name"])
	rows := admin.do(`query($id: ID!) { import(id: $id) { rows { edges { node { line outcome changedFields } } } } }`, vars{"id": id}).requireOK(t)
	require.Equal(t, "CONFLICT", rows.str("import.rows.edges.0.node.outcome"))
}

func TestImportFilesThatCannotBeReadAreRefusedClearly(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	latin1 := "Card ID,Email,First name\n1,z@acme.test,Z\xfcrich\n"

	e := admin.createImport(tid, "latin1.csv", latin1, nil).requireCode(t, "VALIDATION_FAILED")
	reason := e.fieldErrors()["file"]
	require.Contains(t, reason, "line 2")
	require.Contains(t, reason, "byte")

	res := admin.createImport(tid, "latin1.csv", latin1, vars{"encoding": "WINDOWS-1252"}).requireOK(t)
	id := res.str("createImport.id")
	admin.preview(id).requireOK(t)
	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
	require.Equal(t, "SUCCEEDED", admin.waitImport(id).str("import.outcome"))
	require.Equal(t, "Zürich", admin.recordsByCard(tid)["1"]["fields"].(map[string]any)["first_name"])

	admin.createImport(tid, "empty.csv", "", nil).requireCode(t, "VALIDATION_FAILED")
}

func TestOneImportPerTemplateRunsAtATimeAndCanBeCancelled(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	var b strings.Builder
	b.WriteString("Card ID,Email,First name\n")
	for i := range 60000 {
		fmt.Fprintf(&b, "%d,p%d@acme.test,Person %d\n", i+1, i, i)
	}
	first := admin.createImport(tid, "big.csv", b.String(), nil).requireOK(t).str("createImport.id")
	second := admin.createImport(tid, "big.csv", b.String(), nil).requireOK(t).str("createImport.id")
	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": first}).requireOK(t)
	e := admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": second}).requireCode(t, "CONFLICT")
	require.Equal(t, first, e.Extensions["runningImportId"])

	// Cancel while the changes are being written.
	deadline := time.Now().Add(30 * time.Second)
	for admin.do(`query($id: ID!) { import(id: $id) { phase } }`, vars{"id": first}).requireOK(t).str("import.phase") != "APPLYING" {
		require.True(t, time.Now().Before(deadline), "the import never reached APPLYING")
		time.Sleep(5 * time.Millisecond)
	}
	admin.do(`mutation($id: ID!) { cancelImport(id: $id) { id } }`, vars{"id": first}).requireOK(t)
	done := admin.waitImport(first)
	require.Equal(t, "CANCELLED", done.str("import.outcome"), done.Raw)
	require.Empty(t, admin.recordsByCard(tid), "a cancelled import changes nothing")

	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": second}).requireOK(t)
	require.Equal(t, "SUCCEEDED", admin.waitImport(second).str("import.outcome"))
	n := admin.do(`query($t: ID!) { records(templateId: $t) { totalCount } }`, vars{"t": tid}).requireOK(t).num("records.totalCount")
	require.Equal(t, 60000, n)
}

// usedPreviewPlan says whether an import's run reused its preview's plan
// (its timings say so).
func usedPreviewPlan(t *testing.T, c *gqlClient, id string) bool {
	t.Helper()
	res := c.do(`query($id: ID!) { import(id: $id) { timings { phase } } }`, vars{"id": id}).requireOK(t)
	for _, tm := range res.get("import.timings").([]any) {
		if tm.(map[string]any)["phase"] == "step: "+imports.StepRestorePlan {
			return true
		}
	}
	return false
}

func TestTheRunReusesThePreviewOnlyWhenNothingChangedSince(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	admin.addRecord(tid, "1", "a@acme.test", "One")
	other := admin.addRecord(tid, "2", "b@acme.test", "Two")
	file := "Card ID,Email,First name\n1,a@acme.test,Changed\n3,c@acme.test,New\n"
	run := func(edit func()) (string, map[string]map[string]any) {
		id := admin.createImport(tid, "f.csv", file, nil).requireOK(t).str("createImport.id")
		admin.preview(id).requireOK(t)
		edit()
		admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
		done := admin.waitImport(id)
		require.Equal(t, "SUCCEEDED", done.str("import.outcome"), done.Raw)
		return id, admin.recordsByCard(tid)
	}
	// Nothing changed: the preview's plan is applied as it was.
	id, recs := run(func() {})
	require.True(t, usedPreviewPlan(t, admin, id))
	require.Equal(t, "Changed", recs["1"]["fields"].(map[string]any)["first_name"])
	require.Equal(t, "New", recs["3"]["fields"].(map[string]any)["first_name"])

	// Any record of the template edited since the preview (even one the
	// file does not name): the plan is computed again.
	file = "Card ID,Email,First name\n1,a@acme.test,Again\n"
	id, recs = run(func() {
		v := admin.do(recQuery, vars{"id": other}).requireOK(t).num("record.version")
		admin.do(recUpdateMutation, vars{"id": other, "v": v, "in": vars{"fields": []vars{{"key": "first_name", "value": "Edited"}}}}).requireOK(t)
	})
	require.False(t, usedPreviewPlan(t, admin, id))
	require.Equal(t, "Again", recs["1"]["fields"].(map[string]any)["first_name"])
	require.Equal(t, "Edited", recs["2"]["fields"].(map[string]any)["first_name"])

	// A record deleted since the preview: computed again too.
	file = "Card ID,Email,First name\n1,a@acme.test,Once more\n"
	id, _ = run(func() {
		admin.do(recStatusMutation("archiveRecord"), vars{"id": other}).requireOK(t)
		admin.do(recDeleteMutation, vars{"id": other}).requireOK(t)
	})
	require.False(t, usedPreviewPlan(t, admin, id))
	var plans int
	require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_class WHERE relname LIKE 'import\_saved\_plan\_%'`).Scan(&plans))
	require.Zero(t, plans, "applied imports leave no saved plan behind")
}
