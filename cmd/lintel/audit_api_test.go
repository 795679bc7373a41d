package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/caller"
)

// auditRow is an audit event as stored, with the transaction that wrote it.
type auditRow struct {
	ID                                  int64
	Action, TargetKind, TargetID, Actor string
	ActorKind, RequestID, XMin          string
	Details                             map[string]any
}

// auditSince returns the organisation's events after id, oldest first.
func auditSince(t testing.TB, s *testServer, org uuid.UUID, after int64) []auditRow {
	t.Helper()
	rows, err := s.DB.Pool.Query(t.Context(), `SELECT id, action, target_kind, target_id, actor_label, actor_kind, request_id, details, xmin::text
		FROM audit_events WHERE org_id = $1 AND id > $2 ORDER BY id`, org, after)
	require.NoError(t, err)
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		var details []byte
		require.NoError(t, rows.Scan(&r.ID, &r.Action, &r.TargetKind, &r.TargetID, &r.Actor, &r.ActorKind, &r.RequestID, &details, &r.XMin))
		require.NoError(t, json.Unmarshal(details, &r.Details))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// lastAuditID is the newest event's ID (0 for none).
func lastAuditID(t testing.TB, s *testServer) int64 {
	t.Helper()
	var id int64
	require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT COALESCE(max(id), 0) FROM audit_events`).Scan(&id))
	return id
}

// xminOf is the transaction that last wrote a row of table.
func xminOf(t testing.TB, s *testServer, table, id string) string {
	t.Helper()
	var x string
	require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT xmin::text FROM `+table+` WHERE id = $1`, id).Scan(&x))
	return x
}

// photoZip is a ZIP holding one small PNG named for card 1.
func photoZip(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("1.png")
	require.NoError(t, err)
	_, err = w.Write(recPNG(t, 4, 4, false))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func TestEveryMutationWritesOneAuditEventInItsTransaction(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	session := s.operator(org, "session@acme.test", caller.RoleOperator)
	tid := admin.createTemplate(importTemplate)
	rid := admin.addRecord(tid, "1", "ada@acme.test", "Ada")
	imported := admin.createImport(tid, "one.csv", "Card ID,Email,First name\n2,bo@acme.test,Bo\n", nil).requireOK(t).str("createImport.id")
	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": imported}).requireOK(t)
	require.Equal(t, "SUCCEEDED", admin.waitImport(imported).str("import.outcome"))
	other := admin.addRecord(tid, "5", "eve@acme.test", "Eve")
	var draft, queued, refresh string

	type mutation struct {
		name   string
		action string
		// fail makes the mutation fail; it must leave no event.
		fail func(t *testing.T) *gqlResponse
		code string
		// ok runs it; it returns the target's ID and, when the changed row
		// survives the mutation, its table (to compare transactions).
		ok func(t *testing.T) (target, table string)
	}
	mutations := []mutation{
		{"login", "operator.login",
			func(t *testing.T) *gqlResponse {
				return s.anonymous().do(`mutation { login(email: "session@acme.test", password: "wrong password!") { accessToken } }`, nil)
			}, "UNAUTHENTICATED",
			func(t *testing.T) (string, string) {
				res := s.anonymous().do(`mutation($p: String!) { login(email: "session@acme.test", password: $p) { refreshToken operator { id } } }`,
					vars{"p": testPassword}).requireOK(t)
				refresh = res.str("login.refreshToken")
				return res.str("login.operator.id"), ""
			}},
		{"refreshToken", "operator.refresh",
			func(t *testing.T) *gqlResponse {
				return s.anonymous().do(`mutation { refreshToken(refreshToken: "not-a-token") { accessToken } }`, nil)
			}, "UNAUTHENTICATED",
			func(t *testing.T) (string, string) {
				res := s.anonymous().do(`mutation($r: String!) { refreshToken(refreshToken: $r) { refreshToken operator { id } } }`, vars{"r": refresh}).requireOK(t)
				refresh = res.str("refreshToken.refreshToken")
				return res.str("refreshToken.operator.id"), ""
			}},
		{"logout", "operator.logout",
			func(t *testing.T) *gqlResponse {
				return s.anonymous().do(`mutation { logout(refreshToken: "not-a-token") }`, nil)
			}, "UNAUTHENTICATED",
			func(t *testing.T) (string, string) {
				s.anonymous().do(`mutation($r: String!) { logout(refreshToken: $r) }`, vars{"r": refresh}).requireOK(t)
				return session.do(`{ me { id } }`, nil).requireOK(t).str("me.id"), ""
			}},
		{"createTemplate", "template.create",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation { createTemplate(input: {name: "", symbology: QR, cardIdFormat: DECIMAL, fields: []}) { id } }`, nil)
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				return admin.createTemplate(vars{"name": "Audited", "symbology": "QR", "cardIdFormat": "DECIMAL", "fields": []vars{}}), "card_templates"
			}},
		{"updateTemplate", "template.update",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { updateTemplate(id: $id, input: {name: "Members", symbology: QR, cardIdFormat: DECIMAL,
					fields: [{key: "a", type: TEXT}, {key: "a", type: TEXT}]}) { id } }`, vars{"id": tid})
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				in := vars{}
				for k, v := range importTemplate {
					in[k] = v
				}
				in["description"] = "now audited"
				admin.do(`mutation($id: ID!, $in: TemplateInput!) { updateTemplate(id: $id, input: $in) { id } }`, vars{"id": tid, "in": in}).requireOK(t)
				return tid, "card_templates"
			}},
		{"addRecord", "record.create",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($t: ID!) { addRecord(templateId: $t, input: {cardId: "x1", uniqueIdentifier: "cy@acme.test"}) { id } }`, vars{"t": tid})
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				return admin.addRecord(tid, "3", "cy@acme.test", "Cy"), "card_records"
			}},
		{"updateRecord", "record.update",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { updateRecord(id: $id, version: 99, input: {fields: [{key: "first_name", value: "Stale"}]}) { id } }`, vars{"id": rid})
			}, "CONFLICT",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { updateRecord(id: $id, version: 1, input: {fields: [{key: "first_name", value: "Ada B."}],
					securityQuestions: [{question: "Pet?", answer: "Rex the dog"}]}) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"lockFields", "record.lock_fields",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { lockFields(id: $id, fields: ["nope"]) { id } }`, vars{"id": rid})
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { lockFields(id: $id, fields: ["first_name"]) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"unlockFields", "record.unlock_fields",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { unlockFields(id: $id, fields: []) { id } }`, vars{"id": rid})
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { unlockFields(id: $id, fields: ["first_name"]) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"suspendRecord", "record.suspend",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { resumeRecord(id: $id) { id } }`, vars{"id": rid})
			}, "FAILED_PRECONDITION",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { suspendRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"resumeRecord", "record.resume",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { suspendRecord(id: $id) { id } }`, vars{"id": uuid.NewString()})
			}, "NOT_FOUND",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { resumeRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"archiveRecord", "record.archive",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { restoreRecord(id: $id) { id } }`, vars{"id": rid})
			}, "FAILED_PRECONDITION",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { archiveRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"restoreRecord", "record.restore",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { archiveRecord(id: $id) { id } }`, vars{"id": rid})
			}, "FAILED_PRECONDITION",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { restoreRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
				return rid, "card_records"
			}},
		{"deleteRecord", "record.delete",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { deleteRecord(id: $id) }`, vars{"id": other})
			}, "FAILED_PRECONDITION",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { deleteRecord(id: $id) }`, vars{"id": rid}).requireOK(t)
				return rid, ""
			}},
		{"createImport", "import.create",
			func(t *testing.T) *gqlResponse { return admin.createImport(tid, "empty.csv", "", nil) }, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				draft = admin.createImport(tid, "draft.csv", "Card ID,Email,First name\n1,ada@acme.test,Ada\n", nil).requireOK(t).str("createImport.id")
				return draft, "imports"
			}},
		{"updateImport", "import.update",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { updateImport(id: $id, mapping: [{column: 9, field: "card_id"}]) { id } }`, vars{"id": draft})
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { updateImport(id: $id, options: {mode: UPSERT, overwrite: KEEP_EXISTING}) { id } }`, vars{"id": draft}).requireOK(t)
				return draft, "imports"
			}},
		{"uploadImportPhotos", "import.photos",
			func(t *testing.T) *gqlResponse {
				return admin.upload(`mutation($id: ID!, $z: Upload!) { uploadImportPhotos(importId: $id, zip: $z) { id } }`, vars{"id": draft},
					map[string][]byte{"z": []byte("not a zip")})
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				admin.upload(`mutation($id: ID!, $z: Upload!) { uploadImportPhotos(importId: $id, zip: $z) { id } }`, vars{"id": draft},
					map[string][]byte{"z": photoZip(t)}).requireOK(t)
				return draft, "imports"
			}},
		{"cancelImport", "import.cancel",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { cancelImport(id: $id) { id } }`, vars{"id": imported})
			}, "FAILED_PRECONDITION",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { cancelImport(id: $id) { id } }`, vars{"id": draft}).requireOK(t)
				return draft, "imports"
			}},
		{"startImport", "import.start",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": imported})
			}, "FAILED_PRECONDITION",
			func(t *testing.T) (string, string) {
				admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": queued}).requireOK(t)
				// The job's own event comes within this step, not the next.
				waitJobAudit(t, s, "import.apply", queued)
				return queued, ""
			}},
		{"startExport", "export.start",
			func(t *testing.T) *gqlResponse { return admin.startExport(tid, nil, []string{"photo"}, nil) }, "FORBIDDEN",
			func(t *testing.T) (string, string) {
				id := admin.startExport(tid, nil, nil, nil).requireOK(t).str("startExport.id")
				waitJobAudit(t, s, "export.complete", id)
				return id, ""
			}},
		{"startAuditExport", "export.start",
			func(t *testing.T) *gqlResponse {
				return admin.do(`mutation { startAuditExport(filter: {from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z"}) { id } }`, nil)
			}, "VALIDATION_FAILED",
			func(t *testing.T) (string, string) {
				return admin.do(`mutation { startAuditExport { id } }`, nil).requireOK(t).str("startAuditExport.id"), ""
			}},
	}
	// What a mutation needs first, before anything is counted.
	setup := map[string]func(t *testing.T){
		"deleteRecord": func(t *testing.T) {
			admin.do(`mutation($id: ID!) { archiveRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
		},
		"startImport": func(t *testing.T) {
			queued = admin.createImport(tid, "two.csv", "Card ID,Email,First name\n4,di@acme.test,Di\n", nil).requireOK(t).str("createImport.id")
		},
	}
	for _, m := range mutations {
		t.Run(m.name+" writes "+m.action+" when it succeeds and nothing when it fails", func(t *testing.T) {
			if prepare := setup[m.name]; prepare != nil {
				prepare(t)
			}
			mark := lastAuditID(t, s)
			m.fail(t).requireCode(t, m.code)
			require.Empty(t, auditSince(t, s, org, mark), "a failed %s leaves no audit event", m.name)

			target, table := m.ok(t)
			events := auditSince(t, s, org, mark)
			require.NotEmpty(t, events)
			ev := events[0]
			require.Equal(t, m.action, ev.Action)
			require.Equal(t, target, ev.TargetID)
			require.Equal(t, "OPERATOR", ev.ActorKind)
			require.Contains(t, []string{"admin@acme.test", "session@acme.test"}, ev.Actor)
			require.NotEmpty(t, ev.RequestID, "the event names the request")
			for _, later := range events[1:] {
				// Only a job the mutation queued may have written since.
				require.Equal(t, "SYSTEM", later.ActorKind, "one event per mutation: %+v", events)
			}
			if table != "" {
				require.Equal(t, xminOf(t, s, table, target), ev.XMin, "the event was written in the transaction of the change")
			}
		})
	}

	t.Run("a record update records the changed fields with old and new values, secrets redacted", func(t *testing.T) {
		var details []byte
		require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT details FROM audit_events WHERE action = 'record.update' AND target_id = $1`, rid).Scan(&details))
		var d struct {
			Changes map[string]struct{ Old, New any } `json:"changes"`
		}
		require.NoError(t, json.Unmarshal(details, &d))
		require.Equal(t, "Ada", d.Changes["fields.first_name"].Old)
		require.Equal(t, "Ada B.", d.Changes["fields.first_name"].New)
		require.Equal(t, "[redacted]", d.Changes["security_questions"].New)
		require.NotContains(t, string(details), "Rex")
	})
	t.Run("jobs record their outcome as the system, with file name, digest, options and counts", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var n int
			require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action IN ('import.apply', 'export.complete')
				AND actor_kind = 'SYSTEM'`, org).Scan(&n))
			if n >= 4 { // the setup's import, startImport's, startExport's and startAuditExport's
				break
			}
			require.True(t, time.Now().Before(deadline), "the jobs did not finish")
			time.Sleep(50 * time.Millisecond)
		}
		var imp, exp []byte
		require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT details FROM audit_events WHERE action = 'import.apply' ORDER BY id DESC LIMIT 1`).Scan(&imp))
		require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT details FROM audit_events WHERE action = 'export.complete' AND details ->> 'kind' = 'RECORDS'`).Scan(&exp))
		for _, d := range [][]byte{imp, exp} {
			var m map[string]any
			require.NoError(t, json.Unmarshal(d, &m))
			require.NotEmpty(t, m["fileName"])
			require.Len(t, m["sha256"], 64)
			require.NotNil(t, m["options"])
		}
		require.Contains(t, string(imp), `"counts"`)
		require.Contains(t, string(exp), `"rows"`)
	})
}

func TestAChangeWhoseAuditEventCannotBeWrittenIsRolledBack(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	rid := admin.addRecord(tid, "1", "ada@acme.test", "Ada")
	// This test's own database: a trigger refuses some audit events.
	_, err := s.DB.Pool.Exec(t.Context(), `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.action IN ('record.update', 'export.complete') THEN RAISE EXCEPTION 'audit store unavailable'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()`)
	require.NoError(t, err)

	t.Run("the record keeps its values", func(t *testing.T) {
		e := admin.do(`mutation($id: ID!) { updateRecord(id: $id, version: 1, input: {fields: [{key: "first_name", value: "Changed"}]}) { id } }`,
			vars{"id": rid}).requireCode(t, "INTERNAL")
		require.NotContains(t, e.Message, "audit store", "no SQL error reaches the client")
		res := admin.do(`query($id: ID!) { record(id: $id) { version field(key: "first_name") } }`, vars{"id": rid}).requireOK(t)
		require.Equal(t, 1, res.num("record.version"))
		require.Equal(t, "Ada", res.str("record.field"))
	})
	t.Run("the export stores no file and says it failed", func(t *testing.T) {
		id := admin.startExport(tid, nil, nil, nil).requireOK(t).str("startExport.id")
		done := admin.waitExport(id)
		require.Equal(t, "FAILED", done.str("export.status"), done.Raw)
		require.Equal(t, "INTERNAL", done.str("export.errorCode"))
		require.NotContains(t, done.str("export.error"), "audit store", "no SQL error reaches the client")
		require.Nil(t, done.get("export.downloadUrl"))
		var chunks int
		require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM export_chunks WHERE export_id = $1`, id).Scan(&chunks))
		require.Zero(t, chunks)
		var failEvents int
		require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'export.fail' AND target_id = $1`, id).Scan(&failEvents))
		require.Equal(t, 1, failEvents)
	})
}

func TestTheAuditTableRefusesUpdateAndDeleteExceptForRetention(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	admin.createTemplate(importTemplate)
	ctx := t.Context()
	for _, stmt := range []string{
		`UPDATE audit_events SET action = 'forged'`,
		`UPDATE audit_events SET details = '{}' WHERE action = 'template.create'`,
		`DELETE FROM audit_events`,
		`DELETE FROM audit_events WHERE action = 'template.create'`,
		`TRUNCATE audit_events`,
	} {
		_, err := s.DB.Pool.Exec(ctx, stmt)
		require.ErrorContains(t, err, "append-only", stmt)
	}
	var n int
	require.NoError(t, s.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'template.create'`, org).Scan(&n))
	require.Equal(t, 1, n)

	t.Run("the retention job deletes only old events, and says so in the trail", func(t *testing.T) {
		_, err := s.DB.Pool.Exec(ctx, `INSERT INTO audit_events (org_id, at, actor_kind, action) VALUES ($1, now() - interval '40 days', 'SYSTEM', 'ancient.one'),
			($1, now() - interval '31 days', 'SYSTEM', 'ancient.two')`, org)
		require.NoError(t, err)
		deleted, err := auditlog.Prune(ctx, s.DB, 30*24*time.Hour)
		require.NoError(t, err)
		require.EqualValues(t, 2, deleted)
		var ancient, recent, prunes int
		require.NoError(t, s.DB.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action LIKE 'ancient.%'), count(*) FILTER (WHERE action = 'template.create'),
			count(*) FILTER (WHERE action = 'audit.prune' AND details ->> 'deleted' = '2') FROM audit_events WHERE org_id = $1`, org).Scan(&ancient, &recent, &prunes))
		require.Zero(t, ancient)
		require.Equal(t, 1, recent)
		require.Equal(t, 1, prunes)
		// The permission was the retention job's transaction's alone.
		_, err = s.DB.Pool.Exec(ctx, `DELETE FROM audit_events`)
		require.ErrorContains(t, err, "append-only")
		deleted, err = auditlog.Prune(ctx, s.DB, 0)
		require.NoError(t, err)
		require.Zero(t, deleted, "no retention keeps everything")
	})
}

func TestAuditEventsQuery(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	other := s.operator(s.org("Other"), "admin@other.test", caller.RoleAdmin)
	other.createTemplate(importTemplate)
	tid := admin.createTemplate(importTemplate)
	rid := ops.addRecord(tid, "1", "ada@acme.test", "Ada")
	ops.do(`mutation($id: ID!) { suspendRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)

	// One request with a known request ID.
	body, _ := json.Marshal(map[string]any{"query": `mutation($id: ID!, $v: Int!) { updateRecord(id: $id, version: $v, input: {fields: [{key: "first_name", value: "Ada L."}]}) { id } }`,
		"variables": vars{"id": rid, "v": 2}})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ops.Token)
	req.Header.Set("X-Request-ID", "req-audit-42")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	const sel = `edges { cursor node { id at actorKind actorId actor action targetKind targetId requestId details changes { field old new } } } pageInfo { hasNextPage endCursor }`
	list := func(t *testing.T, filter vars, first int, after *string) *gqlResponse {
		t.Helper()
		return admin.do(`query($f: AuditEventFilter, $n: Int, $a: String) { auditEvents(filter: $f, first: $n, after: $a) { `+sel+` } }`,
			vars{"f": filter, "n": first, "a": after}).requireOK(t)
	}
	actions := func(res *gqlResponse) []string {
		var out []string
		for _, e := range res.get("auditEvents.edges").([]any) {
			out = append(out, e.(map[string]any)["node"].(map[string]any)["action"].(string))
		}
		return out
	}

	t.Run("newest first, one organisation only", func(t *testing.T) {
		res := list(t, nil, 100, nil)
		got := actions(res)
		require.Equal(t, []string{"record.update", "record.suspend", "record.create", "template.create"}, got[:4])
		require.NotContains(t, res.Raw, "admin@other.test")
	})
	t.Run("by actor, action, target and time", func(t *testing.T) {
		require.Equal(t, []string{"record.update", "record.suspend", "record.create", "operator.login"}, actions(list(t, vars{"actor": "OPS@acme.test"}, 10, nil)))
		require.Equal(t, []string{"record.update", "record.suspend", "record.create"}, actions(list(t, vars{"action": "record."}, 10, nil)))
		require.Equal(t, []string{"record.suspend"}, actions(list(t, vars{"action": "record.suspend"}, 10, nil)))
		require.Equal(t, []string{"record.update", "record.suspend", "record.create"}, actions(list(t, vars{"target": rid}, 10, nil)))
		require.Empty(t, actions(list(t, vars{"from": time.Now().Add(time.Hour).Format(time.RFC3339)}, 10, nil)))
		require.Contains(t, actions(list(t, vars{"to": time.Now().Add(time.Hour).Format(time.RFC3339), "actor": "SYSTEM"}, 10, nil)), "operator.create",
			"operators made by the command line (here: the test harness) are the system's doing")
		opsID := ops.do(`{ me { id } }`, nil).requireOK(t).str("me.id")
		require.Len(t, actions(list(t, vars{"actor": opsID}, 10, nil)), 4, "login and three record events")
	})
	t.Run("an event shows its request, actor and changes", func(t *testing.T) {
		res := list(t, vars{"action": "record.update"}, 1, nil)
		n := res.get("auditEvents.edges.0.node").(map[string]any)
		require.Equal(t, "req-audit-42", n["requestId"])
		require.Equal(t, "OPERATOR", n["actorKind"])
		require.Equal(t, "ops@acme.test", n["actor"])
		require.Equal(t, "record", n["targetKind"])
		require.Equal(t, []any{map[string]any{"field": "fields.first_name", "old": "Ada", "new": "Ada L."}}, n["changes"])
		require.True(t, json.Valid([]byte(n["details"].(string))))
		res = list(t, vars{"action": "record.suspend"}, 1, nil)
		require.Equal(t, []any{map[string]any{"field": "status", "old": "ACTIVE", "new": "SUSPENDED"}}, res.get("auditEvents.edges.0.node.changes"))
	})
	t.Run("pages follow each other", func(t *testing.T) {
		first := list(t, nil, 2, nil)
		require.True(t, first.get("auditEvents.pageInfo.hasNextPage").(bool))
		cursor := first.str("auditEvents.pageInfo.endCursor")
		second := list(t, nil, 2, &cursor)
		require.Equal(t, []string{"record.create", "template.create"}, actions(second))
		bad := "x"
		e := admin.do(`query($a: String) { auditEvents(after: $a) { pageInfo { hasNextPage } } }`, vars{"a": bad}).requireCode(t, "VALIDATION_FAILED")
		require.Contains(t, e.fieldErrors(), "after")
		e = admin.do(`{ auditEvents(first: 501) { pageInfo { hasNextPage } } }`, nil).requireCode(t, "VALIDATION_FAILED")
		require.Contains(t, e.fieldErrors(), "first")
	})
	t.Run("only ADMINs read the trail", func(t *testing.T) {
		ops.do(`{ auditEvents { pageInfo { hasNextPage } } }`, nil).requireCode(t, "FORBIDDEN")
		ops.do(`mutation { startAuditExport { id } }`, nil).requireCode(t, "FORBIDDEN")
		s.anonymous().do(`{ auditEvents { pageInfo { hasNextPage } } }`, nil).requireCode(t, "UNAUTHENTICATED")
	})
	t.Run("the trail exports as CSV", func(t *testing.T) {
		id := admin.do(`mutation($f: AuditEventFilter) { startAuditExport(filter: $f, options: {fileName: "trail.csv"}) { id kind template { id } } }`,
			vars{"f": vars{"target": rid}}).requireOK(t).str("startAuditExport.id")
		done := admin.waitExport(id)
		require.Equal(t, "SUCCEEDED", done.str("export.status"), done.Raw)
		require.Equal(t, "AUDIT", done.str("export.kind"))
		require.Nil(t, done.get("export.template"))
		status, body := download(t, s.URL+done.str("export.downloadUrl"))
		require.Equal(t, http.StatusOK, status)
		header, rows := readCSV(t, body)
		require.Equal(t, []string{"Event ID", "Time", "Actor kind", "Actor ID", "Actor", "Action", "Target kind", "Target ID", "Request ID", "Details"}, header)
		require.Len(t, rows, 3)
		require.Equal(t, "record.create", rows[0]["Action"], "oldest first, like a log")
		require.Equal(t, "req-audit-42", rows[2]["Request ID"])
		require.Contains(t, rows[2]["Details"], `"Ada L."`)
		_, err := time.Parse(time.RFC3339Nano, rows[0]["Time"])
		require.NoError(t, err)
		// An audit export is for ADMINs: an OPERATOR does not even see it.
		require.Nil(t, ops.do(`query($id: ID!) { export(id: $id) { id } }`, vars{"id": id}).requireOK(t).get("export"))
		require.False(t, strings.Contains(ops.do(`{ exports { edges { node { id } } } }`, nil).requireOK(t).Raw, id))
		require.Contains(t, admin.do(`query { exports(kind: AUDIT) { edges { node { id } } } }`, nil).requireOK(t).Raw, id)
		require.Equal(t, fmt.Sprint(len(rows)), fmt.Sprint(done.num("export.rowCount")))
	})
}

// waitJobAudit waits until a job has written its own audit event for
// target, so that it cannot land in a later step's window.
func waitJobAudit(t *testing.T, s *testServer, action, target string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = $1 AND target_id = $2`, action, target).Scan(&n))
		return n > 0
	}, 30*time.Second, 20*time.Millisecond, "no %s event for %s", action, target)
}
