package auditlog

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestChangesReadRecordUpdatesAndTransitions(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		name    string
		details string
		want    []Change
	}{
		{"a record update", `{"changes": {"fields.b": {"old": null, "new": "x"}, "expires_at": {"old": "2026-01-01T00:00:00Z", "new": null},
			"security_questions": {"old": "[redacted]", "new": "[redacted]"}, "photo": {"old": false, "new": true}}}`,
			[]Change{{"expires_at", str("2026-01-01T00:00:00Z"), nil}, {"fields.b", nil, str("x")}, {"photo", str("false"), str("true")},
				{"security_questions", str("[redacted]"), str("[redacted]")}}},
		{"a status transition", `{"status": {"old": "ACTIVE", "new": "SUSPENDED"}}`, []Change{{"status", str("ACTIVE"), str("SUSPENDED")}}},
		{"details without changes", `{"fileName": "a.csv", "counts": {"create": 1}, "options": {"old": 1}}`, []Change{}},
		{"not an object", `[1, 2]`, []Change{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := Event{Details: json.RawMessage(c.details)}
			require.Equal(t, c.want, e.Changes())
		})
	}
}

func TestFilterConditionsBindEveryValue(t *testing.T) {
	t.Parallel()
	org, actor := uuid.New(), uuid.New()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		f    Filter
		cond string
		args []any
	}{
		{"nothing but the organisation", Filter{}, "org_id = $1", []any{org}},
		{"an actor's ID", Filter{Actor: actor.String()}, "org_id = $1 AND actor_id = $2", []any{org, actor}},
		{"an actor kind", Filter{Actor: "system"}, "org_id = $1 AND actor_kind = $2", []any{org, "SYSTEM"}},
		{"an e-mail, any case", Filter{Actor: " Ada@Example.com "}, "org_id = $1 AND lower(actor_label) = $2", []any{org, "ada@example.com"}},
		{"an action", Filter{Action: "record.update"}, "org_id = $1 AND action = $2", []any{org, "record.update"}},
		{"an action prefix", Filter{Action: "record."}, `org_id = $1 AND action LIKE $2 ESCAPE '\'`, []any{org, "record.%"}},
		{"a starred prefix, wildcards escaped", Filter{Action: "my_act%*"}, `org_id = $1 AND action LIKE $2 ESCAPE '\'`, []any{org, `my\_act\%%`}},
		{"a target and a time range", Filter{Target: "t1", From: &from, To: &from}, "org_id = $1 AND target_id = $2 AND at >= $3 AND at < $4",
			[]any{org, "t1", from, from}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var args []any
			cond := c.f.Conditions(org, func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) })
			require.Equal(t, c.cond, cond)
			require.Equal(t, c.args, args)
		})
	}
	require.Error(t, Filter{From: &from, To: &from}.Validate("filter"), "to must be after from")
}
