package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"maps"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/store"
)

// Record API tests: addRecord, updateRecord, the lifecycle mutations,
// locks, photos, listings, tenant isolation and roles, through the real
// HTTP endpoint.

const recSelection = `id cardId uniqueIdentifier fields { key label value } barcodeValue recipientEmail securityQuestions
	validFrom expiresAt status credentialState lockedFields photoUrl version createdAt updatedAt archivedAt template { id name }`

const recAddMutation = `mutation($t: ID!, $in: RecordInput!, $photo: Upload) {
	addRecord(templateId: $t, input: $in, photo: $photo) { ` + recSelection + ` } }`

const recUpdateMutation = `mutation($id: ID!, $v: Int!, $in: RecordPatch!, $photo: Upload) {
	updateRecord(id: $id, version: $v, input: $in, photo: $photo) { ` + recSelection + ` } }`

const recQuery = `query($id: ID!) { record(id: $id) { ` + recSelection + ` } }`

const recDeleteMutation = `mutation($id: ID!) { deleteRecord(id: $id) }`

const recLockMutation = `mutation($id: ID!, $f: [String!]!) { lockFields(id: $id, fields: $f) { id lockedFields version } }`

const recUnlockMutation = `mutation($id: ID!, $f: [String!]!) { unlockFields(id: $id, fields: $f) { id lockedFields version } }`

const recListQuery = `query($t: ID!, $f: RecordFilter, $o: RecordOrder, $first: Int, $after: String, $last: Int, $before: String) {
	records(templateId: $t, filter: $f, orderBy: $o, first: $first, after: $after, last: $last, before: $before) {
		totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } } } }`

// recStatusMutation is suspendRecord, resumeRecord, archiveRecord or
// restoreRecord.
func recStatusMutation(op string) string {
	return `mutation($id: ID!) { ` + op + `(id: $id) { ` + recSelection + ` } }`
}

// recFieldValues turns a list of {key value} at path into a map.
func recFieldValues(res *gqlResponse, path string) map[string]string {
	out := map[string]string{}
	fs, _ := res.get(path).([]any)
	for _, f := range fs {
		m := f.(map[string]any)
		out[m["key"].(string)] = m["value"].(string)
	}
	return out
}

// recInput is a RecordInput for staffTemplate with both required names set
// (unless fields overrides them) plus fields.
func recInput(cardID, ident string, fields map[string]string) vars {
	all := map[string]string{"first_name": "Ada", "last_name": "Lovelace"}
	maps.Copy(all, fields)
	var fs []vars
	for _, k := range slices.Sorted(maps.Keys(all)) {
		fs = append(fs, vars{"key": k, "value": all[k]})
	}
	return vars{"cardId": cardID, "uniqueIdentifier": ident, "fields": fs}
}

// recPaths lists the paths of a VALIDATION_FAILED error, sorted.
func recPaths(e gqlError) []string {
	return slices.Sorted(maps.Keys(e.fieldErrors()))
}

func recTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, "not a time: %q", s)
	return v
}

func TestAddRecordChecksEveryFieldType(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	tid := admin.createTemplate(staffTemplate)
	n := 0
	add := func(t *testing.T, fields map[string]string) *gqlResponse {
		n++
		return ops.forTest(t).do(recAddMutation, vars{"t": tid, "in": recInput(strconv.Itoa(1000+n), fmt.Sprintf("holder%d@acme.test", n), fields)})
	}
	stored := 0

	accepted := []struct{ name, key, in, want string }{
		{"an e-mail address is stored lower-case", "email", "Ada.Lovelace@Example.COM", "ada.lovelace@example.com"},
		{"spaces around a value are trimmed", "email", "  ada@example.com ", "ada@example.com"},
		{"an E.164 phone number is kept", "phone", "+41446681800", "+41446681800"},
		{"spaces in a phone number are removed", "phone", "+41 44 668 18 00", "+41446681800"},
		{"dashes, dots and brackets in a phone number are removed", "phone", "+1 (212) 555-01.00", "+12125550100"},
		{"a 00 international prefix becomes +", "phone", "0041 44 668 18 00", "+41446681800"},
		{"a lower-case alpha-2 country code is upper-cased", "country", "ch", "CH"},
		{"an alpha-3 country code is stored as alpha-2", "country", "CHE", "CH"},
		{"a lower-case alpha-3 country code is stored as alpha-2", "country", "gbr", "GB"},
		{"an ISO date is kept", "born", "1815-12-10", "1815-12-10"},
		{"a date with slashes is stored as YYYY-MM-DD", "born", "1815/12/10", "1815-12-10"},
		{"a DD.MM.YYYY date is stored as YYYY-MM-DD", "born", "10.12.1815", "1815-12-10"},
		{"an integer", "grade", "42", "42"},
		{"a signed decimal", "grade", "-3.5", "-3.5"},
		{"a decimal without integer part", "grade", ".5", ".5"},
		{"a SELECT value in lower case becomes the option", "dept", "engineering", "Engineering"},
		{"a SELECT value in upper case becomes the option", "dept", "SALES", "Sales"},
		{"text of exactly the maximum length (in characters, not bytes)", "first_name", strings.Repeat("é", 40), strings.Repeat("é", 40)},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			res := add(t, map[string]string{tc.key: tc.in}).requireOK(t)
			stored++
			require.Equal(t, tc.want, recFieldValues(res, "addRecord.fields")[tc.key])
		})
	}

	rejected := []struct{ name, key, in, reason string }{
		{"an e-mail address without a dot in the domain", "email", "ada@localhost", "not a valid e-mail address"},
		{"an e-mail address with a display name", "email", "Ada <ada@example.com>", "not a valid e-mail address"},
		{"an e-mail address without @", "email", "ada.example.com", "not a valid e-mail address"},
		{"a phone number without a country code", "phone", "044 668 18 00", "E.164"},
		{"a phone number with letters", "phone", "+41 44 CALL ME", "E.164"},
		{"a phone number of 16 digits", "phone", "+1234567890123456", "E.164"},
		{"a phone number whose country code starts with 0", "phone", "+0441234567", "E.164"},
		{"the user-assigned country code XX", "country", "XX", "ISO 3166-1"},
		{"an unknown alpha-3 country code", "country", "XXX", "ISO 3166-1"},
		{"the reserved code EU", "country", "EU", "ISO 3166-1"},
		{"a country name", "country", "Switzerland", "ISO 3166-1"},
		{"a day that does not exist", "born", "2026-02-30", "not a date"},
		{"a US-style date", "born", "12/10/1815", "not a date"},
		{"a word instead of a date", "born", "yesterday", "not a date"},
		{"a number in exponent notation", "grade", "1e5", "not a number"},
		{"a number with a decimal comma", "grade", "3,5", "not a number"},
		{"a word instead of a number", "grade", "ten", "not a number"},
		{"a value that is not one of the options", "dept", "Marketing", "not one of the options"},
		{"text over the field's maximum length", "first_name", strings.Repeat("x", 41), "at most 40"},
		{"text over the default maximum length of 1000", "last_name", strings.Repeat("x", 1001), "at most 1000"},
		{"an empty required field", "first_name", "", "is required"},
		{"a required field of only spaces", "last_name", "   ", "is required"},
		{"a field the template does not have", "nickname", "Ada", "not a field of template"},
	}
	for _, tc := range rejected {
		t.Run(tc.name+" is refused naming the field", func(t *testing.T) {
			e := add(t, map[string]string{tc.key: tc.in}).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.fields." + tc.key}, recPaths(e))
			require.Contains(t, e.fieldErrors()["input.fields."+tc.key], tc.reason)
		})
	}

	t.Run("a required field left out entirely is reported", func(t *testing.T) {
		n++
		in := vars{"cardId": strconv.Itoa(1000 + n), "uniqueIdentifier": fmt.Sprintf("holder%d@acme.test", n), "fields": []vars{{"key": "last_name", "value": "Lovelace"}}}
		e := ops.forTest(t).do(recAddMutation, vars{"t": tid, "in": in}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.fields.first_name"}, recPaths(e))
	})
	t.Run("a field given twice is refused", func(t *testing.T) {
		in := vars{"cardId": "1", "uniqueIdentifier": "twice@acme.test", "fields": []vars{
			{"key": "first_name", "value": "Ada"}, {"key": "last_name", "value": "Lovelace"}, {"key": "first_name", "value": "Grace"}}}
		e := ops.forTest(t).do(recAddMutation, vars{"t": tid, "in": in}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.fields[2].key"}, recPaths(e))
	})
	t.Run("every bad field is listed at once", func(t *testing.T) {
		e := add(t, map[string]string{"email": "nope", "phone": "12", "country": "XX", "first_name": "", "nickname": "x"}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.fields.country", "input.fields.email", "input.fields.first_name", "input.fields.nickname", "input.fields.phone"}, recPaths(e))
	})
	t.Run("optional fields left empty are left out of the record", func(t *testing.T) {
		res := add(t, map[string]string{"email": "", "phone": "  "}).requireOK(t)
		stored++
		require.Equal(t, map[string]string{"first_name": "Ada", "last_name": "Lovelace"}, recFieldValues(res, "addRecord.fields"))
		require.Equal(t, []any{
			map[string]any{"key": "first_name", "label": "First name", "value": "Ada"},
			map[string]any{"key": "last_name", "label": "Last name", "value": "Lovelace"},
		}, res.get("addRecord.fields"), "fields come in template order with their labels")
	})
	t.Run("refused records are not stored", func(t *testing.T) {
		res := ops.forTest(t).do(`query($t: ID!) { records(templateId: $t) { totalCount } }`, vars{"t": tid}).requireOK(t)
		require.Equal(t, stored, res.num("records.totalCount"))
	})
	t.Run("codes that are not ISO 3166-1 alpha codes are refused", func(t *testing.T) {
		for _, code := range []string{"UK", "UN", "756"} {
			e := add(t, map[string]string{"country": code}).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.fields.country"}, recPaths(e), "code %s", code)
		}
	})
	t.Run("a phone number with a bracketed trunk zero is not stored as a different number", func(t *testing.T) {
		res := add(t, map[string]string{"phone": "+41 (0)44 668 18 00"})
		if len(res.Errors) > 0 {
			e := res.requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.fields.phone"}, recPaths(e))
			return
		}
		require.Equal(t, "+41446681800", recFieldValues(res, "addRecord.fields")["phone"])
	})
}

func TestCardIDsAreStoredInTheTemplatesCanonicalForm(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	tids := map[string]string{}
	for _, f := range []string{"DECIMAL", "HEX", "HEX_REVERSED", "WIEGAND26", "WIEGAND34", "WIEGAND37"} {
		tids[f] = admin.createTemplate(vars{"name": f, "symbology": "QR", "cardIdFormat": f, "uniqueIdentifierKind": "ID_NUMBER", "fields": []vars{}})
	}
	n := 0
	add := func(t *testing.T, format, cardID string) *gqlResponse {
		n++
		return ops.forTest(t).do(recAddMutation, vars{"t": tids[format], "in": vars{"cardId": cardID, "uniqueIdentifier": fmt.Sprintf("id-%d", n)}})
	}

	accepted := []struct{ name, format, in, want string }{
		{"DECIMAL drops leading zeros", "DECIMAL", "00042", "42"},
		{"DECIMAL trims spaces", "DECIMAL", " 7 ", "7"},
		{"DECIMAL keeps a single zero", "DECIMAL", "000", "0"},
		{"HEX is stored upper-case without separators", "HEX", "04:a1:b2:c3", "04A1B2C3"},
		{"HEX accepts a 0x prefix", "HEX", "0x0a1b2c3d", "0A1B2C3D"},
		{"HEX accepts space-separated bytes", "HEX", "05 A1 B2 C3", "05A1B2C3"},
		{"HEX pads to whole bytes", "HEX", "abc", "0ABC"},
		{"HEX drops leading zero bytes", "HEX", "0006A1", "06A1"},
		{"HEX_REVERSED reverses the byte order", "HEX_REVERSED", "C3B2A104", "04A1B2C3"},
		{"WIEGAND26 FC:CN is kept", "WIEGAND26", "123:45678", "123:45678"},
		{"WIEGAND26 FC-CN with leading zeros becomes FC:CN", "WIEGAND26", "0124-045678", "124:45678"},
		{"WIEGAND26 FC / CN becomes FC:CN", "WIEGAND26", "125 / 45678", "125:45678"},
		{"WIEGAND26 packed number is split into FC:CN", "WIEGAND26", strconv.Itoa(126<<16 | 45678), "126:45678"},
		{"WIEGAND34 takes a 16-bit facility", "WIEGAND34", "65535:65535", "65535:65535"},
		{"WIEGAND37 takes a 19-bit card number", "WIEGAND37", "65535:524287", "65535:524287"},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			res := add(t, tc.format, tc.in).requireOK(t)
			require.Equal(t, tc.want, res.str("addRecord.cardId"))
			require.Equal(t, tc.want, res.str("addRecord.barcodeValue"), "the barcode defaults to the canonical card ID")
		})
	}

	rejected := []struct{ name, format, in, reason string }{
		{"DECIMAL with a grouping space", "DECIMAL", "12 345", "position 3"},
		{"DECIMAL with a sign", "DECIMAL", "-5", "only digits"},
		{"DECIMAL written as hex", "DECIMAL", "0x1A", "only digits"},
		{"HEX with mixed separators", "HEX", "04:a1-b2", "mixes byte separators"},
		{"HEX with non-hex letters", "HEX", "xyz", "only hex digits"},
		{"HEX that is only a prefix", "HEX", "0x", "no hex digits"},
		{"WIEGAND26 facility over 255", "WIEGAND26", "256:1", "facility 256 out of range 0-255"},
		{"WIEGAND26 card over 65535", "WIEGAND26", "1:65536", "card 65536 out of range 0-65535"},
		{"WIEGAND26 with two separators", "WIEGAND26", "1:2:3", "second separator"},
		{"WIEGAND34 facility over 65535", "WIEGAND34", "65536:1", "out of range"},
		{"WIEGAND37 card over 524287", "WIEGAND37", "1:524288", "out of range"},
		{"an empty card ID", "DECIMAL", "   ", "is required"},
	}
	for _, tc := range rejected {
		t.Run(tc.name+" is refused on input.cardId", func(t *testing.T) {
			e := add(t, tc.format, tc.in).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.cardId"}, recPaths(e))
			require.Contains(t, e.fieldErrors()["input.cardId"], tc.reason)
		})
	}

	t.Run("the same card spelled differently is a duplicate", func(t *testing.T) {
		add(t, "HEX", "0x04:D1:B2:C3").requireOK(t)
		e := add(t, "HEX", "04d1b2c3").requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.cardId"}, recPaths(e))
		add(t, "WIEGAND26", "200:1").requireOK(t)
		add(t, "WIEGAND26", strconv.Itoa(200<<16|1)).requireCode(t, "VALIDATION_FAILED")
	})
}

func TestAddRecordAttributes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	staff := admin.createTemplate(staffTemplate)
	students := admin.createTemplate(vars{"name": "Students", "symbology": "PDF417", "cardIdFormat": "DECIMAL", "uniqueIdentifierKind": "ID_NUMBER", "fields": []vars{}})
	add := func(t *testing.T, tid string, in vars) *gqlResponse {
		return ops.forTest(t).do(recAddMutation, vars{"t": tid, "in": in})
	}

	t.Run("a new record gets its defaults", func(t *testing.T) {
		before := time.Now()
		res := add(t, staff, recInput("00042", " Ada@Acme.Test ", nil)).requireOK(t)
		require.Equal(t, "42", res.str("addRecord.cardId"))
		require.Equal(t, "ada@acme.test", res.str("addRecord.uniqueIdentifier"), "e-mail identifiers are stored lower-case")
		require.Equal(t, "ada@acme.test", res.str("addRecord.recipientEmail"), "invitations go to the e-mail identifier")
		require.Equal(t, "42", res.str("addRecord.barcodeValue"))
		require.Nil(t, res.get("addRecord.validFrom"))
		require.WithinDuration(t, before.AddDate(0, 0, 365), recTime(t, res.str("addRecord.expiresAt")), time.Minute, "the template's default validity applies")
		require.Equal(t, "ACTIVE", res.str("addRecord.status"))
		require.Equal(t, "NOT_INVITED", res.str("addRecord.credentialState"))
		require.Equal(t, []any{}, res.get("addRecord.lockedFields"))
		require.Equal(t, []any{}, res.get("addRecord.securityQuestions"))
		require.Nil(t, res.get("addRecord.photoUrl"))
		require.Nil(t, res.get("addRecord.archivedAt"))
		require.Equal(t, 1, res.num("addRecord.version"))
		require.Equal(t, staff, res.str("addRecord.template.id"))
		again := ops.forTest(t).do(recQuery, vars{"id": res.str("addRecord.id")}).requireOK(t)
		require.Equal(t, res.get("addRecord"), again.get("record"), "record(id) returns what addRecord returned")
	})
	t.Run("an explicit barcode value and recipient are kept", func(t *testing.T) {
		in := recInput("43", "grace@acme.test", nil)
		in["barcodeValue"], in["recipientEmail"] = " STAFF-43 ", "Boss@Acme.Test"
		res := add(t, staff, in).requireOK(t)
		require.Equal(t, "STAFF-43", res.str("addRecord.barcodeValue"))
		require.Equal(t, "boss@acme.test", res.str("addRecord.recipientEmail"))
	})
	t.Run("the default validity runs from validFrom", func(t *testing.T) {
		in := recInput("44", "alan@acme.test", nil)
		in["validFrom"] = "2027-01-01T00:00:00Z"
		res := add(t, staff, in).requireOK(t)
		require.Equal(t, "2027-01-01T00:00:00Z", res.str("addRecord.validFrom"))
		require.True(t, recTime(t, res.str("addRecord.expiresAt")).Equal(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)), "expiresAt %s", res.str("addRecord.expiresAt"))
	})
	t.Run("an explicit expiry wins over the default validity", func(t *testing.T) {
		in := recInput("45", "edsger@acme.test", nil)
		in["validFrom"], in["expiresAt"] = "2027-01-01T00:00:00Z", "2027-02-01T12:00:00+01:00"
		res := add(t, staff, in).requireOK(t)
		require.True(t, recTime(t, res.str("addRecord.expiresAt")).Equal(time.Date(2027, 2, 1, 11, 0, 0, 0, time.UTC)))
	})
	t.Run("a template without default validity gives records no expiry", func(t *testing.T) {
		res := add(t, students, vars{"cardId": "1", "uniqueIdentifier": "S-1"}).requireOK(t)
		require.Nil(t, res.get("addRecord.expiresAt"))
		require.Equal(t, "", res.str("addRecord.recipientEmail"), "an ID number is no address to invite")
	})

	invalid := []struct {
		name  string
		tid   string
		in    vars
		paths []string
	}{
		{"expiresAt before validFrom", staff, func() vars {
			in := recInput("50", "v1@acme.test", nil)
			in["validFrom"], in["expiresAt"] = "2027-01-01T00:00:00Z", "2026-12-31T00:00:00Z"
			return in
		}(), []string{"input.expiresAt"}},
		{"expiresAt equal to validFrom", staff, func() vars {
			in := recInput("51", "v2@acme.test", nil)
			in["validFrom"], in["expiresAt"] = "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z"
			return in
		}(), []string{"input.expiresAt"}},
		{"an identifier that is not an e-mail on an EMAIL template", staff, recInput("52", "ada", nil), []string{"input.uniqueIdentifier"}},
		{"an empty identifier", staff, recInput("53", "  ", nil), []string{"input.uniqueIdentifier"}},
		{"an identifier of 255 characters", students, vars{"cardId": "54", "uniqueIdentifier": strings.Repeat("x", 255)}, []string{"input.uniqueIdentifier"}},
		{"an invalid recipient e-mail", staff, func() vars { in := recInput("55", "v5@acme.test", nil); in["recipientEmail"] = "boss"; return in }(), []string{"input.recipientEmail"}},
		{"a card ID, an identifier and a field that are all bad", staff, recInput("x", "ada", map[string]string{"grade": "x"}),
			[]string{"input.cardId", "input.fields.grade", "input.uniqueIdentifier"}},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			e := add(t, tc.tid, tc.in).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, tc.paths, recPaths(e))
		})
	}

	t.Run("uniqueness within a template", func(t *testing.T) {
		add(t, staff, recInput("900", "dup@acme.test", nil)).requireOK(t)
		cases := []struct {
			name  string
			in    vars
			paths []string
		}{
			{"a card ID already used, written with leading zeros", recInput("000900", "other@acme.test", nil), []string{"input.cardId"}},
			{"an e-mail identifier already used, in another case", recInput("901", "DUP@Acme.Test", nil), []string{"input.uniqueIdentifier"}},
			{"both at once", recInput("0900", "Dup@acme.test", nil), []string{"input.cardId", "input.uniqueIdentifier"}},
		}
		for _, tc := range cases {
			t.Run(tc.name+" is VALIDATION_FAILED", func(t *testing.T) {
				e := add(t, staff, tc.in).requireCode(t, "VALIDATION_FAILED")
				require.Equal(t, tc.paths, recPaths(e))
				require.Contains(t, e.fieldErrors()[tc.paths[0]], "already used")
			})
		}
		t.Run("an ID number already used, in another case, is VALIDATION_FAILED", func(t *testing.T) {
			res := add(t, students, vars{"cardId": "901", "uniqueIdentifier": "Ab-123"}).requireOK(t)
			require.Equal(t, "Ab-123", res.str("addRecord.uniqueIdentifier"), "ID numbers keep their case")
			e := add(t, students, vars{"cardId": "902", "uniqueIdentifier": "aB-123"}).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.uniqueIdentifier"}, recPaths(e))
		})
		t.Run("an ID number already used, differing only in the case of a non-ASCII letter, is VALIDATION_FAILED", func(t *testing.T) {
			add(t, students, vars{"cardId": "903", "uniqueIdentifier": "Émile-7"}).requireOK(t)
			e := add(t, students, vars{"cardId": "904", "uniqueIdentifier": "émile-7"}).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.uniqueIdentifier"}, recPaths(e))
		})
		t.Run("the same card ID and identifier in another template are fine", func(t *testing.T) {
			add(t, students, vars{"cardId": "900", "uniqueIdentifier": "dup@acme.test"}).requireOK(t)
		})
	})

	t.Run("of concurrent adds with the same card ID exactly one wins, the others are VALIDATION_FAILED", func(t *testing.T) {
		const racers = 8
		results := make([]*gqlResponse, racers)
		var wg sync.WaitGroup
		for i := range racers {
			c := ops.forTest(t)
			wg.Go(func() {
				results[i] = c.do(recAddMutation, vars{"t": staff, "in": recInput("7777", fmt.Sprintf("racer%d@acme.test", i), nil)})
			})
		}
		wg.Wait()
		wins := 0
		for _, res := range results {
			if len(res.Errors) == 0 {
				wins++
				continue
			}
			e := res.requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"input.cardId"}, recPaths(e))
		}
		require.Equal(t, 1, wins)
	})
	t.Run("security questions are returned without their answers", func(t *testing.T) {
		in := recInput("60", "quiz@acme.test", nil)
		in["securityQuestions"] = []vars{{"question": " Where were you born? ", "answer": "Zürich-Secret-Town"}, {"question": "First pet?", "answer": "Fluffy-The-Secret"}}
		res := add(t, staff, in).requireOK(t)
		require.Equal(t, []any{"Where were you born?", "First pet?"}, res.get("addRecord.securityQuestions"))
		require.NotContains(t, res.Raw, "Secret")
		again := ops.forTest(t).do(recQuery, vars{"id": res.str("addRecord.id")}).requireOK(t)
		require.NotContains(t, strings.ToLower(again.Raw), "secret")
	})
	t.Run("five security questions are allowed, six are not", func(t *testing.T) {
		qs := func(n int) []vars {
			var out []vars
			for i := range n {
				out = append(out, vars{"question": fmt.Sprintf("Question %d?", i), "answer": "answer"})
			}
			return out
		}
		in := recInput("61", "five@acme.test", nil)
		in["securityQuestions"] = qs(6)
		e := add(t, staff, in).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.securityQuestions"}, recPaths(e))
		require.Contains(t, e.fieldErrors()["input.securityQuestions"], "at most 5")
		in["securityQuestions"] = qs(5)
		res := add(t, staff, in).requireOK(t)
		require.Len(t, res.get("addRecord.securityQuestions"), 5)
	})
	t.Run("a security question needs a question and an answer", func(t *testing.T) {
		in := recInput("62", "blank@acme.test", nil)
		in["securityQuestions"] = []vars{{"question": "Colour?", "answer": "   "}, {"question": " ", "answer": "blue"}}
		e := add(t, staff, in).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.securityQuestions[0].answer", "input.securityQuestions[1].question"}, recPaths(e))
	})
	t.Run("an unknown or malformed template is NOT_FOUND", func(t *testing.T) {
		add(t, uuid.NewString(), recInput("70", "ghost@acme.test", nil)).requireCode(t, "NOT_FOUND")
		add(t, "staff", recInput("70", "ghost@acme.test", nil)).requireCode(t, "NOT_FOUND")
	})
}

func TestUpdateRecord(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	tid := admin.createTemplate(staffTemplate)
	n := 0
	// newRecord adds a record with several optional attributes set.
	newRecord := func(t *testing.T) *gqlResponse {
		n++
		in := recInput(strconv.Itoa(100+n), fmt.Sprintf("holder%d@acme.test", n), map[string]string{"email": "private@mail.test", "phone": "+41446681800", "dept": "Sales"})
		in["validFrom"], in["expiresAt"] = "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"
		return ops.forTest(t).do(recAddMutation, vars{"t": tid, "in": in}).requireOK(t)
	}
	update := func(t *testing.T, id string, version int, patch vars) *gqlResponse {
		return ops.forTest(t).do(recUpdateMutation, vars{"id": id, "v": version, "in": patch})
	}

	t.Run("only the attributes present in the patch change", func(t *testing.T) {
		old := newRecord(t)
		res := update(t, old.str("addRecord.id"), 1, vars{"fields": []vars{{"key": "dept", "value": "engineering"}}}).requireOK(t)
		want := recFieldValues(old, "addRecord.fields")
		want["dept"] = "Engineering"
		require.Equal(t, want, recFieldValues(res, "updateRecord.fields"))
		for _, attr := range []string{"cardId", "uniqueIdentifier", "barcodeValue", "recipientEmail", "validFrom", "expiresAt", "status", "createdAt"} {
			require.Equal(t, old.get("addRecord."+attr), res.get("updateRecord."+attr), attr)
		}
		require.Equal(t, 2, res.num("updateRecord.version"))
		require.True(t, recTime(t, res.str("updateRecord.updatedAt")).After(recTime(t, old.str("addRecord.updatedAt"))))
	})
	t.Run("null clears validFrom and leaves expiresAt", func(t *testing.T) {
		old := newRecord(t)
		res := update(t, old.str("addRecord.id"), 1, vars{"validFrom": nil}).requireOK(t)
		require.Nil(t, res.get("updateRecord.validFrom"))
		require.Equal(t, old.get("addRecord.expiresAt"), res.get("updateRecord.expiresAt"))
		res = update(t, old.str("addRecord.id"), 2, vars{"expiresAt": nil}).requireOK(t)
		require.Nil(t, res.get("updateRecord.expiresAt"))
	})
	t.Run("an empty or null field value clears the field", func(t *testing.T) {
		old := newRecord(t)
		res := update(t, old.str("addRecord.id"), 1, vars{"fields": []vars{{"key": "phone", "value": ""}, {"key": "email", "value": nil}}}).requireOK(t)
		fields := recFieldValues(res, "updateRecord.fields")
		require.NotContains(t, fields, "phone")
		require.NotContains(t, fields, "email")
		require.Equal(t, "Sales", fields["dept"])
	})
	t.Run("a required field cannot be cleared", func(t *testing.T) {
		old := newRecord(t)
		e := update(t, old.str("addRecord.id"), 1, vars{"fields": []vars{{"key": "first_name", "value": ""}}}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.fields.first_name"}, recPaths(e))
		cur := ops.forTest(t).do(recQuery, vars{"id": old.str("addRecord.id")}).requireOK(t)
		require.Equal(t, 1, cur.num("record.version"))
		require.Equal(t, "Ada", recFieldValues(cur, "record.fields")["first_name"])
	})
	t.Run("patched values are checked and canonicalised like new ones", func(t *testing.T) {
		old := newRecord(t)
		id := old.str("addRecord.id")
		e := update(t, id, 1, vars{"fields": []vars{{"key": "country", "value": "XX"}, {"key": "nickname", "value": "x"}}}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.fields.country", "input.fields.nickname"}, recPaths(e))
		e = update(t, id, 1, vars{"validFrom": "2031-01-01T00:00:00Z"}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.expiresAt"}, recPaths(e), "validFrom after the existing expiry")
		res := update(t, id, 1, vars{"cardId": "000777", "uniqueIdentifier": "New@Acme.Test", "fields": []vars{{"key": "country", "value": "deu"}}}).requireOK(t)
		require.Equal(t, "777", res.str("updateRecord.cardId"))
		require.Equal(t, "new@acme.test", res.str("updateRecord.uniqueIdentifier"))
		require.Equal(t, "DE", recFieldValues(res, "updateRecord.fields")["country"])
	})
	t.Run("another record's card ID or identifier is refused", func(t *testing.T) {
		a, b := newRecord(t), newRecord(t)
		e := update(t, b.str("addRecord.id"), 1, vars{"cardId": "0" + a.str("addRecord.cardId"), "uniqueIdentifier": strings.ToUpper(a.str("addRecord.uniqueIdentifier"))}).
			requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"input.cardId", "input.uniqueIdentifier"}, recPaths(e))
	})
	t.Run("a stale version is a CONFLICT naming the current version", func(t *testing.T) {
		old := newRecord(t)
		id := old.str("addRecord.id")
		update(t, id, 1, vars{"barcodeValue": "B-1"}).requireOK(t)
		e := update(t, id, 1, vars{"barcodeValue": "B-2"}).requireCode(t, "CONFLICT")
		require.Equal(t, float64(2), e.Extensions["currentVersion"])
		e = update(t, id, 3, vars{"barcodeValue": "B-2"}).requireCode(t, "CONFLICT")
		require.Equal(t, float64(2), e.Extensions["currentVersion"], "a version from the future is just as wrong")
		require.Equal(t, "B-1", ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).str("record.barcodeValue"))
	})
	t.Run("of concurrent updates from the same version exactly one wins, the others are CONFLICT", func(t *testing.T) {
		id := newRecord(t).str("addRecord.id")
		const racers = 6
		results := make([]*gqlResponse, racers)
		var wg sync.WaitGroup
		for i := range racers {
			c := ops.forTest(t)
			wg.Go(func() {
				results[i] = c.do(recUpdateMutation, vars{"id": id, "v": 1, "in": vars{"barcodeValue": fmt.Sprintf("RACE-%d", i)}})
			})
		}
		wg.Wait()
		var winner string
		for _, res := range results {
			if len(res.Errors) == 0 {
				require.Empty(t, winner, "two updates from version 1 both succeeded")
				winner = res.str("updateRecord.barcodeValue")
				require.Equal(t, 2, res.num("updateRecord.version"))
				continue
			}
			e := res.requireCode(t, "CONFLICT")
			require.Equal(t, float64(2), e.Extensions["currentVersion"])
		}
		require.NotEmpty(t, winner)
		require.Equal(t, winner, ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).str("record.barcodeValue"))
	})
	t.Run("an archived record cannot be edited", func(t *testing.T) {
		old := newRecord(t)
		id := old.str("addRecord.id")
		archived := ops.forTest(t).do(recStatusMutation("archiveRecord"), vars{"id": id}).requireOK(t)
		e := update(t, id, archived.num("archiveRecord.version"), vars{"barcodeValue": "B-1"}).requireCode(t, "FAILED_PRECONDITION")
		require.Contains(t, e.Message, "restore")
	})
	t.Run("a patch that changes nothing keeps the version", func(t *testing.T) {
		old := newRecord(t)
		id := old.str("addRecord.id")
		res := update(t, id, 1, vars{
			"cardId": "00" + old.str("addRecord.cardId"), "uniqueIdentifier": strings.ToUpper(old.str("addRecord.uniqueIdentifier")),
			"fields":    []vars{{"key": "first_name", "value": " Ada "}, {"key": "dept", "value": "SALES"}, {"key": "grade", "value": ""}},
			"validFrom": "2026-01-01T01:00:00+01:00",
		}).requireOK(t)
		require.Equal(t, 1, res.num("updateRecord.version"))
		require.Equal(t, old.str("addRecord.updatedAt"), res.str("updateRecord.updatedAt"))
		update(t, id, 1, vars{}).requireOK(t)
		require.Equal(t, 1, ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).num("record.version"))
	})
	t.Run("security questions are replaced as a whole and never shown with answers", func(t *testing.T) {
		old := newRecord(t)
		res := update(t, old.str("addRecord.id"), 1, vars{"securityQuestions": []vars{{"question": "Mother's maiden name?", "answer": "Byron-Hidden"}}}).requireOK(t)
		require.Equal(t, []any{"Mother's maiden name?"}, res.get("updateRecord.securityQuestions"))
		require.NotContains(t, res.Raw, "Hidden")
		res = update(t, old.str("addRecord.id"), 2, vars{"securityQuestions": []vars{}}).requireOK(t)
		require.Equal(t, []any{}, res.get("updateRecord.securityQuestions"))
	})
	t.Run("an unknown record is NOT_FOUND", func(t *testing.T) {
		update(t, uuid.NewString(), 1, vars{"barcodeValue": "x"}).requireCode(t, "NOT_FOUND")
	})
}

func TestRecordLifecycle(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	tid := admin.createTemplate(staffTemplate)
	n := 0
	// recordIn adds a record and brings it into status.
	recordIn := func(t *testing.T, status string) (id string, version int) {
		n++
		c := ops.forTest(t)
		id = c.addRecord(tid, strconv.Itoa(n), fmt.Sprintf("holder%d@acme.test", n), "Ada")
		version = 1
		switch status {
		case "SUSPENDED":
			version = c.do(recStatusMutation("suspendRecord"), vars{"id": id}).requireOK(t).num("suspendRecord.version")
		case "ARCHIVED":
			version = c.do(recStatusMutation("archiveRecord"), vars{"id": id}).requireOK(t).num("archiveRecord.version")
		}
		return id, version
	}

	cases := []struct {
		from, op, to string // to is empty when the transition is refused
	}{
		{"ACTIVE", "suspendRecord", "SUSPENDED"},
		{"ACTIVE", "resumeRecord", ""},
		{"ACTIVE", "archiveRecord", "ARCHIVED"},
		{"ACTIVE", "restoreRecord", ""},
		{"SUSPENDED", "suspendRecord", ""},
		{"SUSPENDED", "resumeRecord", "ACTIVE"},
		{"SUSPENDED", "archiveRecord", "ARCHIVED"},
		{"SUSPENDED", "restoreRecord", ""},
		{"ARCHIVED", "suspendRecord", ""},
		{"ARCHIVED", "resumeRecord", ""},
		{"ARCHIVED", "archiveRecord", ""},
		{"ARCHIVED", "restoreRecord", "ACTIVE"},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s on an %s record makes it %s", tc.op, strings.ToLower(tc.from), tc.to)
		if tc.to == "" {
			name = fmt.Sprintf("%s on an %s record is FAILED_PRECONDITION", tc.op, strings.ToLower(tc.from))
		}
		t.Run(name, func(t *testing.T) {
			id, version := recordIn(t, tc.from)
			res := ops.forTest(t).do(recStatusMutation(tc.op), vars{"id": id})
			if tc.to == "" {
				e := res.requireCode(t, "FAILED_PRECONDITION")
				require.Contains(t, e.Message, tc.from)
				cur := ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t)
				require.Equal(t, tc.from, cur.str("record.status"))
				require.Equal(t, version, cur.num("record.version"))
				return
			}
			res.requireOK(t)
			require.Equal(t, tc.to, res.str(tc.op+".status"))
			require.Equal(t, version+1, res.num(tc.op+".version"))
			if tc.to == "ARCHIVED" {
				require.WithinDuration(t, time.Now(), recTime(t, res.str(tc.op+".archivedAt")), time.Minute)
			} else {
				require.Nil(t, res.get(tc.op+".archivedAt"))
			}
			require.Equal(t, tc.to, ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).str("record.status"))
		})
	}

	t.Run("an unknown record is NOT_FOUND for every transition", func(t *testing.T) {
		for _, op := range []string{"suspendRecord", "resumeRecord", "archiveRecord", "restoreRecord"} {
			ops.forTest(t).do(recStatusMutation(op), vars{"id": uuid.NewString()}).requireCode(t, "NOT_FOUND")
		}
		ops.forTest(t).do(recDeleteMutation, vars{"id": uuid.NewString()}).requireCode(t, "NOT_FOUND")
	})

	for _, status := range []string{"ACTIVE", "SUSPENDED"} {
		t.Run("deleting an "+strings.ToLower(status)+" record is FAILED_PRECONDITION", func(t *testing.T) {
			id, _ := recordIn(t, status)
			e := ops.forTest(t).do(recDeleteMutation, vars{"id": id}).requireCode(t, "FAILED_PRECONDITION")
			require.Contains(t, e.Message, "archive")
			require.NotNil(t, ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).get("record"))
		})
	}
	t.Run("deleting an archived record removes it for good", func(t *testing.T) {
		id, _ := recordIn(t, "ARCHIVED")
		cardID := ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).str("record.cardId")
		res := ops.forTest(t).do(recDeleteMutation, vars{"id": id}).requireOK(t)
		require.Equal(t, id, res.str("deleteRecord"))
		got := ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t)
		require.Contains(t, got.Data, "record")
		require.Nil(t, got.Data["record"])
		ops.forTest(t).do(recDeleteMutation, vars{"id": id}).requireCode(t, "NOT_FOUND")
		ops.forTest(t).do(recStatusMutation("restoreRecord"), vars{"id": id}).requireCode(t, "NOT_FOUND")
		// The card ID is free again.
		ops.forTest(t).addRecord(tid, cardID, "reissued@acme.test", "Ada")
	})
}

func TestLockFields(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	tid := admin.createTemplate(staffTemplate)
	rid := ops.addRecord(tid, "1", "ada@acme.test", "Ada")
	lock := func(t *testing.T, fields ...string) *gqlResponse {
		return ops.forTest(t).do(recLockMutation, vars{"id": rid, "f": fields})
	}
	unlock := func(t *testing.T, fields ...string) *gqlResponse {
		return ops.forTest(t).do(recUnlockMutation, vars{"id": rid, "f": fields})
	}
	stored := func(t *testing.T) *gqlResponse {
		return ops.forTest(t).do(`query($id: ID!) { record(id: $id) { lockedFields version } }`, vars{"id": rid}).requireOK(t)
	}

	// The subtests build on each other, in order.
	t.Run("template fields and attributes can be locked, and the lock persists", func(t *testing.T) {
		res := lock(t, "phone", "card_id", "first_name").requireOK(t)
		require.Equal(t, []any{"card_id", "first_name", "phone"}, res.get("lockFields.lockedFields"))
		require.Equal(t, 2, res.num("lockFields.version"))
		require.Equal(t, res.get("lockFields.lockedFields"), stored(t).get("record.lockedFields"))
	})
	t.Run("locking what is already locked changes nothing", func(t *testing.T) {
		res := lock(t, "card_id").requireOK(t)
		require.Equal(t, 2, res.num("lockFields.version"))
	})
	t.Run("every lockable attribute is accepted", func(t *testing.T) {
		res := lock(t, "card_id", "unique_identifier", "barcode_value", "recipient_email", "valid_from", "expires_at", "photo", "security_questions").requireOK(t)
		require.Len(t, res.get("lockFields.lockedFields"), 10)
	})
	t.Run("unlocking removes exactly the named locks, and that persists", func(t *testing.T) {
		res := unlock(t, "phone", "unique_identifier", "barcode_value", "recipient_email", "valid_from", "expires_at", "photo", "security_questions").requireOK(t)
		require.Equal(t, []any{"card_id", "first_name"}, res.get("unlockFields.lockedFields"))
		require.Equal(t, []any{"card_id", "first_name"}, stored(t).get("record.lockedFields"))
	})
	t.Run("unlocking what is not locked changes nothing", func(t *testing.T) {
		before := stored(t).num("record.version")
		res := unlock(t, "email").requireOK(t)
		require.Equal(t, before, res.num("unlockFields.version"))
	})
	invalid := []struct {
		name   string
		fields []string
		paths  []string
	}{
		{"an unknown name", []string{"nickname"}, []string{"fields[0]"}},
		{"a record attribute that cannot be locked", []string{"status"}, []string{"fields[0]"}},
		{"a known and an unknown name", []string{"email", "Email"}, []string{"fields[1]"}},
		{"no names at all", []string{}, []string{"fields"}},
	}
	for _, tc := range invalid {
		t.Run("locking "+tc.name+" is VALIDATION_FAILED and locks nothing", func(t *testing.T) {
			before := stored(t)
			e := lock(t, tc.fields...).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, tc.paths, recPaths(e))
			require.Equal(t, before.Data, stored(t).Data)
		})
		t.Run("unlocking "+tc.name+" is VALIDATION_FAILED and unlocks nothing", func(t *testing.T) {
			before := stored(t)
			fields := tc.fields
			if len(fields) > 0 {
				fields = append(slices.Clone(fields), "card_id") // which would otherwise be unlocked
			}
			e := unlock(t, fields...).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, tc.paths, recPaths(e))
			require.Equal(t, before.Data, stored(t).Data)
		})
	}
	t.Run("a lock on a field the template no longer has can still be removed", func(t *testing.T) {
		c := ops.forTest(t)
		other := c.addRecord(tid, "2", "grace@acme.test", "Grace")
		c.do(recLockMutation, vars{"id": other, "f": []string{"grade"}}).requireOK(t)
		admin.forTest(t).do(tplUpdateMutation, vars{"id": tid, "in": tplWithFields(staffTemplate, tplStaffFieldsWithout("grade")...)}).requireOK(t)
		res := c.do(recUnlockMutation, vars{"id": other, "f": []string{"grade"}})
		res.requireOK(t)
		require.Equal(t, []any{}, res.get("unlockFields.lockedFields"))
	})
	t.Run("an unknown record is NOT_FOUND", func(t *testing.T) {
		ops.forTest(t).do(recLockMutation, vars{"id": uuid.NewString(), "f": []string{"card_id"}}).requireCode(t, "NOT_FOUND")
		ops.forTest(t).do(recUnlockMutation, vars{"id": uuid.NewString(), "f": []string{"card_id"}}).requireCode(t, "NOT_FOUND")
	})
}

// recPNG encodes a w×h PNG; noisy pictures do not compress.
func recPNG(t testing.TB, w, h int, noisy bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 16), uint8(y * 16), 128, 255}
			if noisy {
				c = color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// recJPEG encodes a small JPEG.
func recJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 4)
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 30}))
	return buf.Bytes()
}

func TestRecordPhotos(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, map[string]string{"LINTEL_MAX_PHOTO": "1KiB"})
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	viewer := s.operator(org, "viewer@acme.test", caller.RoleViewer)
	other := s.operator(s.org("Other"), "admin@other.test", caller.RoleAdmin)
	tid := admin.createTemplate(staffTemplate)
	smallPNG, smallJPEG := recPNG(t, 8, 8, false), recJPEG(t)
	require.Less(t, len(smallPNG), 1024)
	require.Less(t, len(smallJPEG), 1024)
	n := 0
	addWithPhoto := func(t *testing.T, photo []byte) *gqlResponse {
		n++
		return ops.forTest(t).upload(recAddMutation, vars{"t": tid, "in": recInput(strconv.Itoa(n), fmt.Sprintf("p%d@acme.test", n), nil)}, map[string][]byte{"photo": photo})
	}
	count := func(t *testing.T) int {
		return ops.forTest(t).do(`query($t: ID!) { records(templateId: $t) { totalCount } }`, vars{"t": tid}).requireOK(t).num("records.totalCount")
	}

	for _, tc := range []struct {
		name, contentType string
		data              []byte
	}{{"PNG", "image/png", smallPNG}, {"JPEG", "image/jpeg", smallJPEG}} {
		t.Run("a "+tc.name+" photo is served back with its content type", func(t *testing.T) {
			res := addWithPhoto(t, tc.data).requireOK(t)
			id := res.str("addRecord.id")
			url := res.str("addRecord.photoUrl")
			require.Equal(t, "/records/"+id+"/photo", url)
			for _, c := range []*gqlClient{ops, viewer} {
				resp, body := c.forTest(t).httpGet(s.URL + url)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
				require.Equal(t, tc.data, body)
			}

			resp, _ := s.anonymous().forTest(t).httpGet(s.URL + url)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "without a token")
			resp, _ = other.forTest(t).httpGet(s.URL + url)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "from another organisation")
			garbage := &gqlClient{t: t, URL: ops.URL, http: ops.http, Token: "garbage"}
			resp, _ = garbage.httpGet(s.URL + url)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "with a bad token")
		})
	}
	t.Run("a record without a photo has no photoUrl and its photo path is 404", func(t *testing.T) {
		id := ops.forTest(t).addRecord(tid, "500", "nophoto@acme.test", "Ada")
		require.Nil(t, ops.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).get("record.photoUrl"))
		resp, _ := ops.forTest(t).httpGet(s.URL + "/records/" + id + "/photo")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("updateRecord replaces the photo", func(t *testing.T) {
		res := addWithPhoto(t, smallPNG).requireOK(t)
		id := res.str("addRecord.id")
		up := ops.forTest(t).upload(recUpdateMutation, vars{"id": id, "v": 1, "in": vars{}}, map[string][]byte{"photo": smallJPEG}).requireOK(t)
		require.Equal(t, 2, up.num("updateRecord.version"))
		resp, body := ops.forTest(t).httpGet(s.URL + up.str("updateRecord.photoUrl"))
		require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
		require.Equal(t, smallJPEG, body)
	})

	refused := []struct {
		name string
		data []byte
	}{
		{"a text file named like a photo", []byte("this is not a picture, just text\n")},
		{"a damaged PNG", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 64)...)},
		{"a GIF", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")},
		{"a photo over LINTEL_MAX_PHOTO", recPNG(t, 64, 64, true)},
	}
	for _, tc := range refused {
		t.Run(tc.name+" is VALIDATION_FAILED on photo and adds nothing", func(t *testing.T) {
			before := count(t)
			e := addWithPhoto(t, tc.data).requireCode(t, "VALIDATION_FAILED")
			require.Equal(t, []string{"photo"}, recPaths(e))
			require.Equal(t, before, count(t))
		})
	}
	t.Run("an oversize photo is refused on updateRecord too", func(t *testing.T) {
		id := ops.forTest(t).addRecord(tid, "600", "big@acme.test", "Ada")
		e := ops.forTest(t).upload(recUpdateMutation, vars{"id": id, "v": 1, "in": vars{}}, map[string][]byte{"photo": recPNG(t, 64, 64, true)}).requireCode(t, "VALIDATION_FAILED")
		require.Equal(t, []string{"photo"}, recPaths(e))
	})
	t.Run("a multipart request without GraphQL-Require-Preflight is refused", func(t *testing.T) {
		before := count(t)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		operations, _ := json.Marshal(map[string]any{"query": recAddMutation, "variables": vars{"t": tid, "in": recInput("700", "csrf@acme.test", nil), "photo": nil}})
		require.NoError(t, mw.WriteField("operations", string(operations)))
		require.NoError(t, mw.WriteField("map", `{"0":["variables.photo"]}`))
		fw, err := mw.CreateFormFile("0", "photo.png")
		require.NoError(t, err)
		_, _ = fw.Write(smallPNG)
		require.NoError(t, mw.Close())
		c := admin.forTest(t)
		req, _ := http.NewRequest(http.MethodPost, c.URL, &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		res := c.post(req)
		require.Equal(t, http.StatusBadRequest, res.Status)
		e := res.requireCode(t, "INVALID_ARGUMENT")
		require.Contains(t, e.Message, "GraphQL-Require-Preflight")
		require.Equal(t, before, count(t))
	})
}

// recListing is one page of recListQuery.
type recListing struct {
	ids                  []string
	cursors              []string
	total                int
	hasNext, hasPrevious bool
	start, end           string
}

func recList(t testing.TB, c *gqlClient, args vars) recListing {
	t.Helper()
	res := c.forTest(t).do(recListQuery, args).requireOK(t)
	out := recListing{total: res.num("records.totalCount"), start: res.str("records.pageInfo.startCursor"), end: res.str("records.pageInfo.endCursor")}
	out.hasNext, _ = res.get("records.pageInfo.hasNextPage").(bool)
	out.hasPrevious, _ = res.get("records.pageInfo.hasPreviousPage").(bool)
	edges, _ := res.get("records.edges").([]any)
	for _, e := range edges {
		m := e.(map[string]any)
		out.ids = append(out.ids, m["node"].(map[string]any)["id"].(string))
		out.cursors = append(out.cursors, m["cursor"].(string))
	}
	if len(edges) > 0 {
		require.Equal(t, out.cursors[0], out.start)
		require.Equal(t, out.cursors[len(out.cursors)-1], out.end)
	}
	return out
}

func TestRecordListings(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	viewer := s.operator(org, "viewer@acme.test", caller.RoleViewer)
	tid := admin.createTemplate(vars{"name": "Members", "symbology": "QR", "cardIdFormat": "DECIMAL", "uniqueIdentifierKind": "ID_NUMBER", "fields": []vars{
		{"key": "name", "type": "TEXT"}, {"key": "dept", "type": "SELECT", "options": []string{"Sales", "Engineering"}},
	}})
	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	const day = 24 * time.Hour
	seeds := []struct{ card, ident, name, dept, validFrom, expiresAt string }{
		{"7", "k-3", "Ada Lovelace", "Engineering", at(30 * day), ""},   // 0: not valid yet
		{"100", "B-9", "Grace Hopper", "Sales", at(-2 * day), at(-day)}, // 1: expired
		{"25", "a-1", "Alan Turing", "Engineering", "", at(10 * day)},   // 2: expires soon
		{"3000", "J-4", "Edsger Dijkstra", "Sales", "", ""},             // 3: suspended
		{"42", "c-7", "Barbara Liskov", "Sales", "", at(100 * day)},     // 4: suspended
		{"9", "L-2", "Donald Knuth", "", "", ""},                        // 5: archived
		{"11", "d-5", "Ken Thompson", "Engineering", "", ""},
		{"510", "I-8", "Dennis Ritchie", "", "", ""},
		{"64", "e-6", "John McCarthy", "Sales", "", ""},
		{"8", "H-0", "Frances Allen", "", "", ""},
		{"1234", "f-11", "Margaret Hamilton", "Engineering", "", ""},
		{"77", "G-10", "Tony Hoare", "", "", ""},
	}
	ids := make([]string, len(seeds))
	for i, sd := range seeds {
		in := vars{"cardId": sd.card, "uniqueIdentifier": sd.ident, "fields": []vars{{"key": "name", "value": sd.name}, {"key": "dept", "value": sd.dept}}}
		if sd.validFrom != "" {
			in["validFrom"] = sd.validFrom
		}
		if sd.expiresAt != "" {
			in["expiresAt"] = sd.expiresAt
		}
		ids[i] = admin.do(recAddMutation, vars{"t": tid, "in": in}).requireOK(t).str("addRecord.id")
	}
	admin.do(recStatusMutation("suspendRecord"), vars{"id": ids[3]}).requireOK(t)
	suspended4 := admin.do(recStatusMutation("suspendRecord"), vars{"id": ids[4]}).requireOK(t).str("suspendRecord.updatedAt")
	admin.do(recStatusMutation("archiveRecord"), vars{"id": ids[5]}).requireOK(t)
	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, ids[i])
		}
		return out
	}
	all := pick(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)

	filters := []struct {
		name   string
		filter vars
		want   []string
	}{
		{"no filter lists every record", vars{}, all},
		{"status ACTIVE leaves out suspended and archived records", vars{"status": "ACTIVE"}, pick(0, 1, 2, 6, 7, 8, 9, 10, 11)},
		{"status SUSPENDED", vars{"status": "SUSPENDED"}, pick(3, 4)},
		{"status ARCHIVED", vars{"status": "ARCHIVED"}, pick(5)},
		{"credential state NOT_INVITED", vars{"credentialState": "NOT_INVITED"}, all},
		{"credential state INVITED", vars{"credentialState": "INVITED"}, nil},
		{"search in a field value, ignoring case", vars{"search": "LOVELACE"}, pick(0)},
		{"search for a SELECT value's substring", vars{"search": "engin"}, pick(0, 2, 6, 10)},
		{"search in the unique identifier, ignoring case", vars{"search": "b-9"}, pick(1)},
		{"search in the card ID", vars{"search": "300"}, pick(3)},
		{"search with a LIKE wildcard matches it literally", vars{"search": "%"}, nil},
		{"search with an underscore matches it literally", vars{"search": "_"}, nil},
		{"search for something nobody has", vars{"search": "zzz"}, nil},
		{"validAt now leaves out records not yet valid and expired ones", vars{"validAt": at(0)}, pick(2, 3, 4, 5, 6, 7, 8, 9, 10, 11)},
		{"validAt in 20 days also leaves out records expiring before", vars{"validAt": at(20 * day)}, pick(3, 4, 5, 6, 7, 8, 9, 10, 11)},
		{"expiresBefore in 20 days", vars{"expiresBefore": at(20 * day)}, pick(1, 2)},
		{"expiresBefore now", vars{"expiresBefore": at(0)}, pick(1)},
		{"updatedSince a change lists that and later changes", vars{"updatedSince": suspended4}, pick(4, 5)},
		{"criteria combine", vars{"status": "ACTIVE", "search": "engin", "validAt": at(0)}, pick(2, 6, 10)},
	}
	for _, tc := range filters {
		t.Run("filter: "+tc.name, func(t *testing.T) {
			page := recList(t, viewer, vars{"t": tid, "f": tc.filter, "first": 100})
			require.ElementsMatch(t, tc.want, page.ids)
			require.Equal(t, len(tc.want), page.total, "totalCount honours the filter")
			require.False(t, page.hasNext)
		})
	}
	t.Run("totalCount counts beyond the page", func(t *testing.T) {
		page := recList(t, viewer, vars{"t": tid, "f": vars{"status": "ACTIVE"}, "first": 2})
		require.Len(t, page.ids, 2)
		require.Equal(t, 9, page.total)
		require.True(t, page.hasNext)
	})
	t.Run("without orderBy the listing is in creation order", func(t *testing.T) {
		page := recList(t, viewer, vars{"t": tid})
		require.Equal(t, all, page.ids)
	})

	sortedBy := func(key func(i int) string) []string {
		idx := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
		slices.SortFunc(idx, func(a, b int) int { return strings.Compare(key(a), key(b)) })
		return pick(idx...)
	}
	orders := []struct {
		field string
		asc   []string
	}{
		{"CREATED_AT", all},
		{"UPDATED_AT", pick(0, 1, 2, 6, 7, 8, 9, 10, 11, 3, 4, 5)},
		{"CARD_ID", sortedBy(func(i int) string { return seeds[i].card })},
		{"UNIQUE_IDENTIFIER", sortedBy(func(i int) string { return strings.ToLower(seeds[i].ident) })},
	}
	for _, o := range orders {
		for _, dir := range []string{"ASC", "DESC"} {
			want := slices.Clone(o.asc)
			if dir == "DESC" {
				slices.Reverse(want)
			}
			order := vars{"field": o.field, "direction": dir}
			t.Run(fmt.Sprintf("ordered by %s %s", o.field, dir), func(t *testing.T) {
				require.Equal(t, want, recList(t, viewer, vars{"t": tid, "o": order, "first": 100}).ids)
			})
			for _, size := range []int{4, 5} {
				t.Run(fmt.Sprintf("ordered by %s %s, paging forward %d at a time visits each record once", o.field, dir, size), func(t *testing.T) {
					var got []string
					args := vars{"t": tid, "o": order, "first": size}
					for pages := 0; ; pages++ {
						require.Less(t, pages, 10)
						page := recList(t, viewer, args)
						require.Equal(t, pages > 0, page.hasPrevious, "hasPreviousPage on page %d", pages)
						require.Equal(t, len(seeds), page.total)
						require.NotEmpty(t, page.ids, "no empty trailing page")
						got = append(got, page.ids...)
						if !page.hasNext {
							break
						}
						args["after"] = page.end
					}
					require.Equal(t, want, got)
				})
				t.Run(fmt.Sprintf("ordered by %s %s, paging backward %d at a time visits each record once", o.field, dir, size), func(t *testing.T) {
					var got []string
					args := vars{"t": tid, "o": order, "last": size}
					for pages := 0; ; pages++ {
						require.Less(t, pages, 10)
						page := recList(t, viewer, args)
						require.Equal(t, pages > 0, page.hasNext, "hasNextPage on page %d", pages)
						require.NotEmpty(t, page.ids, "no empty leading page")
						got = append(slices.Clone(page.ids), got...)
						if !page.hasPrevious {
							break
						}
						args["before"] = page.start
					}
					require.Equal(t, want, got)
				})
			}
		}
	}
	t.Run("paging through a filtered listing", func(t *testing.T) {
		var got []string
		args := vars{"t": tid, "f": vars{"status": "ACTIVE"}, "o": vars{"field": "CARD_ID", "direction": "DESC"}, "first": 4}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			page := recList(t, viewer, args)
			require.Equal(t, 9, page.total)
			got = append(got, page.ids...)
			if !page.hasNext {
				break
			}
			args["after"] = page.end
		}
		want := sortedBy(func(i int) string { return seeds[i].card })
		slices.Reverse(want)
		want = slices.DeleteFunc(want, func(id string) bool { return slices.Contains(pick(3, 4, 5), id) })
		require.Equal(t, want, got)
	})
	t.Run("a page between two cursors", func(t *testing.T) {
		full := recList(t, viewer, vars{"t": tid, "first": 100})
		page := recList(t, viewer, vars{"t": tid, "after": full.cursors[2], "before": full.cursors[7], "first": 100})
		require.Equal(t, all[3:7], page.ids)
	})

	t.Run("paging by UNIQUE_IDENTIFIER visits non-ASCII identifiers once each", func(t *testing.T) {
		tid := admin.forTest(t).createTemplate(vars{"name": "Abroad", "symbology": "QR", "cardIdFormat": "DECIMAL", "uniqueIdentifierKind": "ID_NUMBER", "fields": []vars{}})
		for i, ident := range []string{"Émile", "Ñico", "Óscar", "zoe", "Ärne", "bob"} {
			admin.forTest(t).do(recAddMutation, vars{"t": tid, "in": vars{"cardId": strconv.Itoa(i + 1), "uniqueIdentifier": ident}}).requireOK(t)
		}
		for _, dir := range []string{"ASC", "DESC"} {
			order := vars{"field": "UNIQUE_IDENTIFIER", "direction": dir}
			want := recList(t, viewer, vars{"t": tid, "o": order, "first": 100}).ids
			require.Len(t, want, 6)
			var got []string
			args := vars{"t": tid, "o": order, "first": 1}
			for pages := 0; ; pages++ {
				require.Less(t, pages, 10)
				page := recList(t, viewer, args)
				got = append(got, page.ids...)
				if !page.hasNext {
					break
				}
				args["after"] = page.end
			}
			require.Equal(t, want, got, "direction %s", dir)
		}
	})

	badArgs := []struct {
		name string
		args vars
	}{
		{"a cursor that is not base64", vars{"after": "not a cursor!"}},
		{"a cursor that is base64 of garbage", vars{"after": base64.RawURLEncoding.EncodeToString([]byte("garbage"))}},
		{"a before cursor that is not a cursor", vars{"before": "xyz", "last": 2}},
		{"a cursor of a listing in another order", vars{"after": recList(t, viewer, vars{"t": tid, "o": vars{"field": "CARD_ID"}, "first": 1}).end}},
		{"first over 500", vars{"first": 501}},
		{"last over 500", vars{"last": 501}},
		{"a negative first", vars{"first": -1}},
		{"first and last together", vars{"first": 2, "last": 2}},
	}
	for _, tc := range badArgs {
		t.Run(tc.name+" is INVALID_ARGUMENT", func(t *testing.T) {
			args := maps.Clone(tc.args)
			args["t"] = tid
			viewer.forTest(t).do(`query($t: ID!, $first: Int, $after: String, $last: Int, $before: String) {
				records(templateId: $t, first: $first, after: $after, last: $last, before: $before) { totalCount } }`, args).requireCode(t, "INVALID_ARGUMENT")
		})
	}
	t.Run("first 500 is allowed", func(t *testing.T) {
		require.Len(t, recList(t, viewer, vars{"t": tid, "first": 500}).ids, len(seeds))
	})
	t.Run("record(id) is null for an unknown or malformed ID", func(t *testing.T) {
		for _, id := range []string{uuid.NewString(), "nope"} {
			res := viewer.forTest(t).do(recQuery, vars{"id": id}).requireOK(t)
			require.Contains(t, res.Data, "record")
			require.Nil(t, res.Data["record"])
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	a := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	b := s.operator(s.org("Bolt"), "admin@bolt.test", caller.RoleAdmin)

	bTemplate := b.createTemplate(tplNamed(staffTemplate, "Bolt staff"))
	bActive := b.addRecord(bTemplate, "1", "active@bolt.test", "Active")
	b.do(recLockMutation, vars{"id": bActive, "f": []string{"first_name"}}).requireOK(t)
	bSuspended := b.addRecord(bTemplate, "2", "suspended@bolt.test", "Suspended")
	b.do(recStatusMutation("suspendRecord"), vars{"id": bSuspended}).requireOK(t)
	bArchived := b.addRecord(bTemplate, "3", "archived@bolt.test", "Archived")
	b.do(recStatusMutation("archiveRecord"), vars{"id": bArchived}).requireOK(t)
	photo := b.upload(recAddMutation, vars{"t": bTemplate, "in": recInput("4", "photo@bolt.test", nil)}, map[string][]byte{"photo": recPNG(t, 4, 4, false)}).
		requireOK(t).str("addRecord.photoUrl")

	aTemplate := a.createTemplate(tplNamed(staffTemplate, "Acme staff"))
	a.addRecord(aTemplate, "10", "ada@acme.test", "Ada")

	snapshot := func(t *testing.T) string {
		var out []any
		out = append(out, b.forTest(t).do(tplQuery, vars{"id": bTemplate}).requireOK(t).Data)
		for _, id := range []string{bActive, bSuspended, bArchived} {
			out = append(out, b.forTest(t).do(recQuery, vars{"id": id}).requireOK(t).Data)
		}
		out = append(out, recList(t, b, vars{"t": bTemplate}).ids)
		raw, _ := json.Marshal(out)
		return string(raw)
	}
	before := snapshot(t)

	nullable := []struct{ name, query, id string }{
		{"template", tplQuery, bTemplate},
		{"record", recQuery, bActive},
	}
	for _, tc := range nullable {
		t.Run(tc.name+"(id) of another organisation is null", func(t *testing.T) {
			res := a.forTest(t).do(tc.query, vars{"id": tc.id}).requireOK(t)
			require.Contains(t, res.Data, tc.name)
			require.Nil(t, res.Data[tc.name])
		})
	}
	notFound := []struct {
		name  string
		query string
		vars  vars
	}{
		{"records(templateId)", `query($t: ID!) { records(templateId: $t) { totalCount edges { node { id } } } }`, vars{"t": bTemplate}},
		{"updateTemplate", tplUpdateMutation, vars{"id": bTemplate, "in": tplWithFields(tplNamed(staffTemplate, "Hijacked")), "drop": true}},
		{"addRecord(templateId)", recAddMutation, vars{"t": bTemplate, "in": recInput("99", "intruder@acme.test", nil)}},
		{"updateRecord", recUpdateMutation, vars{"id": bActive, "v": 2, "in": vars{"cardId": "666"}}},
		{"suspendRecord", recStatusMutation("suspendRecord"), vars{"id": bActive}},
		{"resumeRecord", recStatusMutation("resumeRecord"), vars{"id": bSuspended}},
		{"archiveRecord", recStatusMutation("archiveRecord"), vars{"id": bActive}},
		{"restoreRecord", recStatusMutation("restoreRecord"), vars{"id": bArchived}},
		{"deleteRecord", recDeleteMutation, vars{"id": bArchived}},
		{"lockFields", recLockMutation, vars{"id": bActive, "f": []string{"card_id"}}},
		{"unlockFields", recUnlockMutation, vars{"id": bActive, "f": []string{"first_name"}}},
	}
	for _, tc := range notFound {
		t.Run(tc.name+" with another organisation's ID is NOT_FOUND", func(t *testing.T) {
			res := a.forTest(t).do(tc.query, tc.vars)
			res.requireCode(t, "NOT_FOUND")
			require.Len(t, res.Errors, 1)
			require.NotContains(t, res.Raw, "Bolt", "nothing of the other organisation leaks")
		})
	}
	t.Run("another organisation's photo is 404", func(t *testing.T) {
		resp, _ := a.forTest(t).httpGet(s.URL + photo)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("the other organisation's data is unchanged", func(t *testing.T) {
		require.Equal(t, before, snapshot(t))
	})
	t.Run("templates lists only the caller's templates", func(t *testing.T) {
		res := a.forTest(t).do(`{ templates { id name } }`, nil).requireOK(t)
		require.Equal(t, []any{map[string]any{"id": aTemplate, "name": "Acme staff"}}, res.get("templates"))
	})
	t.Run("records lists only the caller's records, even with the same card IDs", func(t *testing.T) {
		a.forTest(t).addRecord(aTemplate, "1", "active@bolt.test", "Same card, other organisation")
		page := recList(t, a, vars{"t": aTemplate, "first": 100})
		require.Equal(t, 2, page.total)
		for _, id := range []string{bActive, bSuspended, bArchived} {
			require.NotContains(t, page.ids, id)
		}
		require.Equal(t, 1, recList(t, a, vars{"t": aTemplate, "f": vars{"search": "bolt.test"}, "first": 100}).total,
			"only A's own record with that address matches")
	})
}

func TestRolesAndAuthentication(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	ops := s.operator(org, "ops@acme.test", caller.RoleOperator)
	viewer := s.operator(org, "viewer@acme.test", caller.RoleViewer)
	tid := admin.createTemplate(staffTemplate)
	active := admin.addRecord(tid, "1", "active@acme.test", "Active")
	suspended := admin.addRecord(tid, "2", "suspended@acme.test", "Suspended")
	admin.do(recStatusMutation("suspendRecord"), vars{"id": suspended}).requireOK(t)
	archived := admin.addRecord(tid, "3", "archived@acme.test", "Archived")
	admin.do(recStatusMutation("archiveRecord"), vars{"id": archived}).requireOK(t)

	snapshot := func(t *testing.T) string {
		page := admin.forTest(t).do(`query($t: ID!) { template(id: $t) { version name } records(templateId: $t) { totalCount edges { node { `+recSelection+` } } } }`,
			vars{"t": tid}).requireOK(t)
		return page.Raw
	}
	before := snapshot(t)

	mutations := []struct {
		name, query string
		vars        vars
		adminOnly   bool
	}{
		{"createTemplate", tplCreateMutation, vars{"in": tplNamed(staffTemplate, "New")}, true},
		{"updateTemplate", tplUpdateMutation, vars{"id": tid, "in": tplNamed(staffTemplate, "Renamed")}, true},
		{"addRecord", recAddMutation, vars{"t": tid, "in": recInput("4", "new@acme.test", nil)}, false},
		{"updateRecord", recUpdateMutation, vars{"id": active, "v": 1, "in": vars{"barcodeValue": "X"}}, false},
		{"suspendRecord", recStatusMutation("suspendRecord"), vars{"id": active}, false},
		{"resumeRecord", recStatusMutation("resumeRecord"), vars{"id": suspended}, false},
		{"archiveRecord", recStatusMutation("archiveRecord"), vars{"id": active}, false},
		{"restoreRecord", recStatusMutation("restoreRecord"), vars{"id": archived}, false},
		{"deleteRecord", recDeleteMutation, vars{"id": archived}, false},
		{"lockFields", recLockMutation, vars{"id": active, "f": []string{"card_id"}}, false},
		{"unlockFields", recUnlockMutation, vars{"id": active, "f": []string{"card_id"}}, false},
	}
	for _, m := range mutations {
		t.Run("a viewer may not "+m.name, func(t *testing.T) {
			viewer.forTest(t).do(m.query, m.vars).requireCode(t, "FORBIDDEN")
		})
		if m.adminOnly {
			t.Run("an operator may not "+m.name, func(t *testing.T) {
				ops.forTest(t).do(m.query, m.vars).requireCode(t, "FORBIDDEN")
			})
		}
		t.Run("an anonymous caller may not "+m.name, func(t *testing.T) {
			s.anonymous().do(m.query, m.vars).requireCode(t, "UNAUTHENTICATED")
		})
	}
	t.Run("refused mutations changed nothing", func(t *testing.T) {
		require.Equal(t, before, snapshot(t))
	})

	queries := []struct {
		name, query string
		vars        vars
	}{
		{"me", `{ me { email role } }`, nil},
		{"templates", `{ templates { id name } }`, nil},
		{"template", tplQuery, vars{"id": tid}},
		{"records", `query($t: ID!) { records(templateId: $t) { totalCount edges { node { id } } } }`, vars{"t": tid}},
		{"record", recQuery, vars{"id": active}},
	}
	for _, q := range queries {
		t.Run("a viewer may query "+q.name, func(t *testing.T) {
			res := viewer.forTest(t).do(q.query, q.vars).requireOK(t)
			require.NotNil(t, res.Data[q.name])
		})
		t.Run("an anonymous caller may not query "+q.name, func(t *testing.T) {
			res := s.anonymous().do(q.query, q.vars)
			res.requireCode(t, "UNAUTHENTICATED")
			require.Nil(t, res.Data[q.name])
		})
		t.Run("a garbage Bearer token querying "+q.name+" gets 401", func(t *testing.T) {
			garbage := &gqlClient{t: t, URL: viewer.URL, http: viewer.http, Token: "garbage.token.here"}
			res := garbage.do(q.query, q.vars)
			require.Equal(t, http.StatusUnauthorized, res.Status)
			res.requireCode(t, "UNAUTHENTICATED")
		})
	}

	t.Run("an operator manages records from start to end", func(t *testing.T) {
		c := ops.forTest(t)
		id := c.do(recAddMutation, vars{"t": tid, "in": recInput("10", "managed@acme.test", nil)}).requireOK(t).str("addRecord.id")
		c.do(recUpdateMutation, vars{"id": id, "v": 1, "in": vars{"barcodeValue": "M-10"}}).requireOK(t)
		c.do(recLockMutation, vars{"id": id, "f": []string{"barcode_value"}}).requireOK(t)
		c.do(recUnlockMutation, vars{"id": id, "f": []string{"barcode_value"}}).requireOK(t)
		for _, op := range []string{"suspendRecord", "resumeRecord", "archiveRecord", "restoreRecord", "archiveRecord"} {
			c.do(recStatusMutation(op), vars{"id": id}).requireOK(t)
		}
		c.do(recDeleteMutation, vars{"id": id}).requireOK(t)
	})
	t.Run("an admin may do everything an operator may", func(t *testing.T) {
		admin.forTest(t).do(recLockMutation, vars{"id": active, "f": []string{"card_id"}}).requireOK(t)
	})
}

// recTemplateReads counts SQL statements that read card_templates (a pgx
// tracer: it sees statements sent through bun and through pgx alike).
type recTemplateReads struct{ n atomic.Int64 }

func (h *recTemplateReads) TraceQueryStart(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	if strings.Contains(q.SQL, "FROM card_templates") {
		h.n.Add(1)
	}
	return ctx
}

func (h *recTemplateReads) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A page of records resolves every record's template (for template and for
// the field labels) through a per-request dataloader, which the listing
// primes with the template it reads to check access: one template read
// per page, however long. The reads are counted by a
// tracer on the server's own connection pool: PostgreSQL's statistics
// views flush asynchronously and are too unreliable for an exact count.
func TestRecordPagesLoadTheirTemplateOnce(t *testing.T) {
	t.Parallel()
	reads := &recTemplateReads{}
	s := newTestServerOn(t, nil, store.Options{MaxConns: 10, Tracer: reads})
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(staffTemplate)
	for i := range 50 {
		admin.addRecord(tid, strconv.Itoa(i+1), fmt.Sprintf("holder%d@acme.test", i), "Ada")
	}
	measure := func(t *testing.T, first int) int64 {
		reads.n.Store(0)
		res := admin.forTest(t).do(`query($t: ID!, $n: Int) { records(templateId: $t, first: $n) { totalCount edges { node { id
			template { name } fields { key label value } } } } }`, vars{"t": tid, "n": first}).requireOK(t)
		require.Len(t, res.get("records.edges"), first)
		require.Equal(t, "Staff", res.str("records.edges.0.node.template.name"))
		require.Equal(t, "First name", res.str(fmt.Sprintf("records.edges.%d.node.fields.0.label", first-1)))
		return reads.n.Load()
	}
	one, fifty := measure(t, 1), measure(t, 50)
	t.Logf("template reads: %d for one record, %d for 50", one, fifty)
	require.GreaterOrEqual(t, one, int64(1), "the counter sees template reads at all")
	require.Equal(t, one, fifty, "50 records cost as many template reads as one")
	require.Equal(t, int64(1), fifty, "the listing's own read of the template serves the records' template and fields")
}
