package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

// Template API tests: createTemplate, updateTemplate, template and templates,
// through the real HTTP endpoint. Shared helpers of the template and record
// API tests carry the tpl and rec prefixes.

const tplSelection = `id name description fields { key label type required side options maxLength personal sensitive }
	symbology cardIdFormat uniqueIdentifierKind defaultValidityDays version createdAt updatedAt`

const tplCreateMutation = `mutation($in: TemplateInput!) { createTemplate(input: $in) { ` + tplSelection + ` } }`

const tplUpdateMutation = `mutation($id: ID!, $in: TemplateInput!, $drop: Boolean) {
	updateTemplate(id: $id, input: $in, dropFieldData: $drop) { ` + tplSelection + ` } }`

const tplQuery = `query($id: ID!) { template(id: $id) { ` + tplSelection + ` } }`

// forTest returns a copy of c that reports its helpers' failures to t, so
// subtests do not fail their parent from another goroutine.
func (c *gqlClient) forTest(t testing.TB) *gqlClient {
	cp := *c
	cp.t = t
	return &cp
}

// tplNamed returns a shallow copy of a template input with another name.
func tplNamed(base vars, name string) vars {
	out := maps.Clone(base)
	out["name"] = name
	return out
}

// tplWithFields returns a copy of base with its fields replaced.
func tplWithFields(base vars, fields ...vars) vars {
	out := maps.Clone(base)
	if fields == nil {
		fields = []vars{}
	}
	out["fields"] = fields
	return out
}

// tplStaffFieldsWithout returns staffTemplate's fields minus the given keys.
func tplStaffFieldsWithout(keys ...string) []vars {
	var out []vars
	for _, f := range staffTemplate["fields"].([]vars) {
		if !slices.Contains(keys, f["key"].(string)) {
			out = append(out, f)
		}
	}
	return out
}

// tplField returns the field with key from a template in a response.
func tplField(t testing.TB, res *gqlResponse, path, key string) map[string]any {
	t.Helper()
	fs, _ := res.get(path + ".fields").([]any)
	for _, f := range fs {
		if m := f.(map[string]any); m["key"] == key {
			return m
		}
	}
	t.Fatalf("template at %s has no field %q: %s", path, key, res.Raw)
	return nil
}

// tplKeys lists the keys of a template's fields in a response, in order.
func tplKeys(res *gqlResponse, path string) []string {
	var out []string
	fs, _ := res.get(path + ".fields").([]any)
	for _, f := range fs {
		out = append(out, f.(map[string]any)["key"].(string))
	}
	return out
}

func TestCreateTemplate(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)

	t.Run("a complete definition is stored with its defaults filled in", func(t *testing.T) {
		in := tplNamed(staffTemplate, "  Staff  ")
		in["fields"] = append(tplStaffFieldsWithout(), vars{"key": "nickname", "type": "TEXT"})
		res := admin.forTest(t).do(tplCreateMutation, vars{"in": in}).requireOK(t)
		require.NotEmpty(t, res.str("createTemplate.id"))
		require.Equal(t, "Staff", res.str("createTemplate.name"), "the name is trimmed")
		require.Equal(t, "", res.str("createTemplate.description"))
		require.Equal(t, "QR", res.str("createTemplate.symbology"))
		require.Equal(t, "DECIMAL", res.str("createTemplate.cardIdFormat"))
		require.Equal(t, "EMAIL", res.str("createTemplate.uniqueIdentifierKind"), "cardholders are identified by e-mail by default")
		require.Equal(t, 365, res.num("createTemplate.defaultValidityDays"))
		require.Equal(t, 1, res.num("createTemplate.version"))
		require.Equal(t, res.str("createTemplate.createdAt"), res.str("createTemplate.updatedAt"))
		require.Equal(t, []string{"first_name", "last_name", "email", "phone", "country", "born", "grade", "dept", "nickname"},
			tplKeys(res, "createTemplate"), "fields keep their order")

		first := tplField(t, res, "createTemplate", "first_name")
		require.Equal(t, map[string]any{"key": "first_name", "label": "First name", "type": "TEXT", "required": true, "side": "FRONT",
			"options": []any{}, "maxLength": float64(40), "personal": false, "sensitive": false}, first)
		require.Equal(t, float64(1000), tplField(t, res, "createTemplate", "last_name")["maxLength"], "the default maximum length is 1000")
		require.Equal(t, "BACK", tplField(t, res, "createTemplate", "phone")["side"])
		require.Equal(t, true, tplField(t, res, "createTemplate", "born")["personal"])
		require.Equal(t, []any{"Sales", "Engineering"}, tplField(t, res, "createTemplate", "dept")["options"])
		require.Equal(t, "nickname", tplField(t, res, "createTemplate", "nickname")["label"], "the label defaults to the key")

		again := admin.forTest(t).do(tplQuery, vars{"id": res.str("createTemplate.id")}).requireOK(t)
		require.Equal(t, res.get("createTemplate"), again.get("template"), "template(id) returns what createTemplate returned")
	})

	t.Run("an ID_NUMBER template without default validity", func(t *testing.T) {
		res := admin.forTest(t).do(tplCreateMutation, vars{"in": vars{"name": "Badges", "description": "Visitor badges", "symbology": "CODE128",
			"cardIdFormat": "WIEGAND26", "uniqueIdentifierKind": "ID_NUMBER", "fields": []vars{}}}).requireOK(t)
		require.Equal(t, "ID_NUMBER", res.str("createTemplate.uniqueIdentifierKind"))
		require.Equal(t, "WIEGAND26", res.str("createTemplate.cardIdFormat"))
		require.Equal(t, "Visitor badges", res.str("createTemplate.description"))
		require.Nil(t, res.get("createTemplate.defaultValidityDays"))
		require.Empty(t, res.get("createTemplate.fields"))
	})

	field := func(kv ...any) vars {
		f := vars{"type": "TEXT"}
		for i := 0; i < len(kv); i += 2 {
			f[kv[i].(string)] = kv[i+1]
		}
		return f
	}
	invalid := []struct {
		name   string
		input  vars
		paths  []string
		reason string
	}{
		{"a field key with upper-case letters", tplWithFields(staffTemplate, field("key", "FirstName")), []string{"input.fields[0].key"}, "lower-case"},
		{"a field key starting with a digit", tplWithFields(staffTemplate, field("key", "1st")), []string{"input.fields[0].key"}, ""},
		{"a field key with a dash", tplWithFields(staffTemplate, field("key", "first-name")), []string{"input.fields[0].key"}, ""},
		{"a field key of 64 characters", tplWithFields(staffTemplate, field("key", "k"+strings.Repeat("x", 63))), []string{"input.fields[0].key"}, "at most 63"},
		{"a field key that is the record's card_id attribute", tplWithFields(staffTemplate, field("key", "card_id")), []string{"input.fields[0].key"}, "reserved"},
		{"a field key that is the record's status attribute", tplWithFields(staffTemplate, field("key", "status")), []string{"input.fields[0].key"}, "reserved"},
		{"two fields with the same key", tplWithFields(staffTemplate, field("key", "name"), field("key", " name ")), []string{"input.fields[1].key"}, "used by another field"},
		{"a SELECT field without options", tplWithFields(staffTemplate, field("key", "dept", "type", "SELECT")), []string{"input.fields[0].options"}, "at least one option"},
		{"a SELECT field listing an option twice, ignoring case", tplWithFields(staffTemplate, field("key", "dept", "type", "SELECT", "options", []string{"Sales", "sales"})),
			[]string{"input.fields[0].options[1]"}, "listed twice"},
		{"a SELECT field with an empty option", tplWithFields(staffTemplate, field("key", "dept", "type", "SELECT", "options", []string{"Sales", " "})),
			[]string{"input.fields[0].options[1]"}, "must not be empty"},
		{"options on a TEXT field", tplWithFields(staffTemplate, field("key", "dept", "options", []string{"Sales"})), []string{"input.fields[0].options"}, "only SELECT"},
		{"a negative maximum length", tplWithFields(staffTemplate, field("key", "note", "maxLength", -1)), []string{"input.fields[0].maxLength"}, ""},
		{"an empty name", tplNamed(staffTemplate, "   "), []string{"input.name"}, "must not be empty"},
		{"a name of 201 characters", tplNamed(staffTemplate, strings.Repeat("n", 201)), []string{"input.name"}, "at most 200"},
		{"a default validity of zero days", func() vars { in := tplNamed(staffTemplate, "Zero"); in["defaultValidityDays"] = 0; return in }(),
			[]string{"input.defaultValidityDays"}, ""},
		{"several problems at once, each listed", tplWithFields(tplNamed(staffTemplate, ""), field("key", "Bad"), field("key", "dept", "type", "SELECT")),
			[]string{"input.name", "input.fields[0].key", "input.fields[1].options"}, ""},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is refused with VALIDATION_FAILED", func(t *testing.T) {
			e := admin.forTest(t).do(tplCreateMutation, vars{"in": tc.input}).requireCode(t, "VALIDATION_FAILED")
			fields := e.fieldErrors()
			require.Len(t, fields, len(tc.paths), "field errors: %v", fields)
			for _, p := range tc.paths {
				require.Contains(t, fields, p)
			}
			require.Contains(t, fields[tc.paths[0]], tc.reason)
		})
	}

	t.Run("a second template with the same name, ignoring case and spaces, is refused", func(t *testing.T) {
		admin.forTest(t).do(tplCreateMutation, vars{"in": tplNamed(staffTemplate, "Contractors")}).requireOK(t)
		e := admin.forTest(t).do(tplCreateMutation, vars{"in": tplNamed(staffTemplate, " contractors ")}).requireCode(t, "VALIDATION_FAILED")
		require.Contains(t, e.fieldErrors()["input.name"], "already exists")
	})

	t.Run("an unknown card-ID format is a GraphQL validation error", func(t *testing.T) {
		in := tplNamed(staffTemplate, "Magstripe")
		in["cardIdFormat"] = "MAGSTRIPE"
		admin.forTest(t).do(tplCreateMutation, vars{"in": in}).requireCode(t, "GRAPHQL_VALIDATION_FAILED")
		admin.forTest(t).do(`mutation { createTemplate(input: {name: "Magstripe", symbology: QR, cardIdFormat: MAGSTRIPE, fields: []}) { id } }`, nil).
			requireCode(t, "GRAPHQL_VALIDATION_FAILED")
	})

	t.Run("refused definitions leave nothing behind", func(t *testing.T) {
		res := admin.forTest(t).do(`{ templates { name } }`, nil).requireOK(t)
		var names []string
		for _, tpl := range res.get("templates").([]any) {
			names = append(names, tpl.(map[string]any)["name"].(string))
		}
		require.ElementsMatch(t, []string{"Staff", "Badges", "Contractors"}, names)
	})
}

func TestUpdateTemplate(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)

	// newStaff creates a staff template with one record holding an e-mail
	// field value and returns both IDs.
	newStaff := func(t *testing.T, name string) (tid, rid string) {
		tid = admin.forTest(t).createTemplate(tplNamed(staffTemplate, name))
		res := ops.forTest(t).do(recAddMutation, vars{"t": tid, "in": vars{"cardId": "1", "uniqueIdentifier": "ada@acme.test", "fields": []vars{
			{"key": "first_name", "value": "Ada"}, {"key": "last_name", "value": "Lovelace"}, {"key": "email", "value": "ada.private@mail.test"},
		}}}).requireOK(t)
		return tid, res.str("addRecord.id")
	}
	recordOf := func(t *testing.T, rid string) *gqlResponse {
		return ops.forTest(t).do(`query($id: ID!) { record(id: $id) { version fields { key label value } template { name version } } }`, vars{"id": rid}).requireOK(t)
	}

	t.Run("renaming keeps the ID, increments the version and shows on records", func(t *testing.T) {
		tid, rid := newStaff(t, "Rename me")
		res := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplNamed(staffTemplate, "Employees")}).requireOK(t)
		require.Equal(t, tid, res.str("updateTemplate.id"))
		require.Equal(t, "Employees", res.str("updateTemplate.name"))
		require.Equal(t, 2, res.num("updateTemplate.version"))
		require.True(t, recTime(t, res.str("updateTemplate.updatedAt")).After(recTime(t, res.str("updateTemplate.createdAt"))))
		rec := recordOf(t, rid)
		require.Equal(t, "Employees", rec.str("record.template.name"))
		require.Equal(t, 1, rec.num("record.version"), "records are not touched by a rename")

		res = admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplNamed(staffTemplate, "Employees")}).requireOK(t)
		require.Equal(t, 3, res.num("updateTemplate.version"), "every update counts")
	})

	t.Run("a relabelled field shows its new label on records", func(t *testing.T) {
		tid, rid := newStaff(t, "Relabel")
		fields := tplStaffFieldsWithout()
		fields[0] = vars{"key": "first_name", "label": "Given name", "type": "TEXT", "required": true}
		admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplWithFields(tplNamed(staffTemplate, "Relabel"), fields...)}).requireOK(t)
		require.Equal(t, "Given name", recordOf(t, rid).str("record.fields.0.label"))
	})

	t.Run("removing a field that a record holds a value for fails with FAILED_PRECONDITION", func(t *testing.T) {
		tid, rid := newStaff(t, "Keep data")
		in := tplWithFields(tplNamed(staffTemplate, "Keep data"), tplStaffFieldsWithout("email")...)
		e := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": in}).requireCode(t, "FAILED_PRECONDITION")
		require.Contains(t, e.Message, "dropFieldData")
		require.Equal(t, float64(1), e.Extensions["records"])
		require.Equal(t, []any{"email"}, e.Extensions["fields"])
		admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": in, "drop": false}).requireCode(t, "FAILED_PRECONDITION")

		tpl := admin.forTest(t).do(tplQuery, vars{"id": tid}).requireOK(t)
		require.Equal(t, 1, tpl.num("template.version"), "the template is unchanged")
		require.Contains(t, tplKeys(tpl, "template"), "email")
		require.Equal(t, "ada.private@mail.test", recFieldValues(recordOf(t, rid), "record.fields")["email"])
	})

	t.Run("removing a field no record uses needs no dropFieldData", func(t *testing.T) {
		tid, rid := newStaff(t, "Unused field")
		res := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplWithFields(tplNamed(staffTemplate, "Unused field"), tplStaffFieldsWithout("grade")...)}).requireOK(t)
		require.NotContains(t, tplKeys(res, "updateTemplate"), "grade")
		require.Equal(t, 1, recordOf(t, rid).num("record.version"))
	})

	t.Run("with dropFieldData the removed field's values are gone from records", func(t *testing.T) {
		tid, rid := newStaff(t, "Drop data")
		in := tplWithFields(tplNamed(staffTemplate, "Drop data"), tplStaffFieldsWithout("email")...)
		res := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": in, "drop": true}).requireOK(t)
		require.Equal(t, 2, res.num("updateTemplate.version"))
		rec := recordOf(t, rid)
		require.NotContains(t, recFieldValues(rec, "record.fields"), "email")
		require.Equal(t, 2, rec.num("record.version"), "the record changed, so its version moved on")

		// Adding the field back does not bring the old values back.
		admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplNamed(staffTemplate, "Drop data")}).requireOK(t)
		require.NotContains(t, recFieldValues(recordOf(t, rid), "record.fields"), "email")
	})

	t.Run("with dropFieldData the removed values no longer match a search", func(t *testing.T) {
		tid, _ := newStaff(t, "Drop and search")
		search := func() int {
			return ops.forTest(t).do(`query($t: ID!) { records(templateId: $t, filter: {search: "ada.private"}) { totalCount } }`, vars{"t": tid}).
				requireOK(t).num("records.totalCount")
		}
		require.Equal(t, 1, search())
		in := tplWithFields(tplNamed(staffTemplate, "Drop and search"), tplStaffFieldsWithout("email")...)
		admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": in, "drop": true}).requireOK(t)
		require.Equal(t, 0, search(), "a deleted value must not still be found (and kept) in the search index")
	})

	t.Run("renaming to another template's name is refused", func(t *testing.T) {
		admin.forTest(t).createTemplate(tplNamed(staffTemplate, "Taken"))
		tid, _ := newStaff(t, "Wants a taken name")
		e := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplNamed(staffTemplate, "TAKEN")}).requireCode(t, "VALIDATION_FAILED")
		require.Contains(t, e.fieldErrors(), "input.name")
		require.Equal(t, "Wants a taken name", admin.forTest(t).do(tplQuery, vars{"id": tid}).requireOK(t).str("template.name"))
	})

	t.Run("a template may change the case of its own name", func(t *testing.T) {
		tid, _ := newStaff(t, "lower case")
		res := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplNamed(staffTemplate, "Lower Case")}).requireOK(t)
		require.Equal(t, "Lower Case", res.str("updateTemplate.name"))
	})

	t.Run("an invalid definition is refused as on create", func(t *testing.T) {
		tid, _ := newStaff(t, "Stays valid")
		in := tplWithFields(tplNamed(staffTemplate, "Stays valid"), vars{"key": "first_name", "type": "TEXT"}, vars{"key": "kind", "type": "SELECT"})
		e := admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": in, "drop": true}).requireCode(t, "VALIDATION_FAILED")
		require.Contains(t, e.fieldErrors(), "input.fields[1].options")
		require.Equal(t, 1, admin.forTest(t).do(tplQuery, vars{"id": tid}).requireOK(t).num("template.version"))
	})

	t.Run("an unknown or malformed template ID is NOT_FOUND", func(t *testing.T) {
		admin.forTest(t).do(tplUpdateMutation, vars{"id": uuid.NewString(), "in": tplNamed(staffTemplate, "Ghost")}).requireCode(t, "NOT_FOUND")
		admin.forTest(t).do(tplUpdateMutation, vars{"id": "not-an-id", "in": tplNamed(staffTemplate, "Ghost")}).requireCode(t, "NOT_FOUND")
	})
}

func TestTemplateQueries(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	viewer := s.operator(org, "viewer@acme.test", caller.RoleViewer)
	for _, name := range []string{"gamma", "Beta", "delta", "Alpha", "alphabet"} {
		admin.createTemplate(tplNamed(staffTemplate, name))
	}

	t.Run("templates are listed by name, ignoring case", func(t *testing.T) {
		res := viewer.forTest(t).do(`{ templates { name } }`, nil).requireOK(t)
		var names []string
		for _, tpl := range res.get("templates").([]any) {
			names = append(names, tpl.(map[string]any)["name"].(string))
		}
		require.Equal(t, []string{"Alpha", "alphabet", "Beta", "delta", "gamma"}, names)
	})
	t.Run("template(id) is null for an unknown ID", func(t *testing.T) {
		res := viewer.forTest(t).do(tplQuery, vars{"id": uuid.NewString()}).requireOK(t)
		require.Contains(t, res.Data, "template")
		require.Nil(t, res.Data["template"])
	})
	t.Run("template(id) is null for a malformed ID", func(t *testing.T) {
		res := viewer.forTest(t).do(tplQuery, vars{"id": "42"}).requireOK(t)
		require.Nil(t, res.Data["template"])
	})
	t.Run("records of an unknown template are NOT_FOUND", func(t *testing.T) {
		viewer.forTest(t).do(`query($t: ID!) { records(templateId: $t) { totalCount } }`, vars{"t": uuid.NewString()}).requireCode(t, "NOT_FOUND")
	})
}
