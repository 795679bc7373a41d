package exports

import (
	"fmt"
	"strings"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/templates"
)

// Column keys of the record's own attributes. The first six are the
// import's mapping targets; the rest describe the record and are written
// under headers the import's mapping proposal leaves unmapped.
const (
	ColCardID           = "card_id"
	ColUniqueIdentifier = "unique_identifier"
	ColBarcodeValue     = "barcode_value"
	ColRecipientEmail   = "recipient_email"
	ColValidFrom        = "valid_from"
	ColExpiresAt        = "expires_at"
	ColStatus           = "status"
	ColCredentialState  = "credential_state"
	ColCreatedAt        = "created_at"
	ColUpdatedAt        = "updated_at"
)

// never lists what no role may export, with the reason given when asked.
var never = map[string]string{
	"security_questions": "security questions and answers are never exported",
	"security_answers":   "security questions and answers are never exported",
	"photo":              "photos are not exported",
}

// columnKind is how a column's value is read and written.
type columnKind int

const (
	kindText      columnKind = iota // user-supplied text: neutralised
	kindPlain                       // values that can never start a formula
	kindInstant                     // a timestamptz, written in RFC 3339 (UTC)
	kindCardID                      // the card ID, written in the template's format
	kindFieldText                   // a template field's value: neutralised
)

// columnDef is a column a template's export can have.
type columnDef struct {
	Column
	kind columnKind
	// personal columns are left out for VIEWERs, sensitive ones for
	// everyone but ADMINs.
	personal, sensitive bool
	// source is the card_records column, or the field key for kindFieldText.
	source string
}

// catalogue lists every column of t's export in file order: the import's
// own order (as in the example CSV) first, then the descriptive columns.
// Headers are unique (the import refuses a file whose header names a
// column twice): a field whose label another column already uses is
// headed by its key, which the import's mapping proposal also recognises.
func catalogue(t *templates.Template) []columnDef {
	defs := []columnDef{
		{Column: Column{ColCardID, "Card ID"}, kind: kindCardID, source: "card_id"},
		{Column: Column{ColUniqueIdentifier, "Unique identifier"}, kind: kindText, personal: true, source: "unique_identifier"},
	}
	for _, f := range t.Fields {
		defs = append(defs, columnDef{Column: Column{f.Key, f.Label}, kind: kindFieldText, personal: f.Personal, sensitive: f.Sensitive, source: f.Key})
	}
	defs = append(defs,
		// The barcode usually is the card ID, but it may carry anything the
		// organisation prints: it counts as personal.
		columnDef{Column: Column{ColBarcodeValue, "Barcode value"}, kind: kindText, personal: true, source: "barcode_value"},
		columnDef{Column: Column{ColRecipientEmail, "Recipient e-mail"}, kind: kindText, personal: true, source: "recipient_email"},
		columnDef{Column: Column{ColValidFrom, "Valid from"}, kind: kindInstant, source: "valid_from"},
		columnDef{Column: Column{ColExpiresAt, "Expires at"}, kind: kindInstant, source: "expires_at"},
		columnDef{Column: Column{ColStatus, "Status"}, kind: kindPlain, source: "status"},
		columnDef{Column: Column{ColCredentialState, "Credential state"}, kind: kindPlain, source: "credential_state"},
		columnDef{Column: Column{ColCreatedAt, "Created at"}, kind: kindInstant, source: "created_at"},
		columnDef{Column: Column{ColUpdatedAt, "Updated at"}, kind: kindInstant, source: "updated_at"},
	)
	seen := map[string]bool{}
	for i := range defs {
		d := &defs[i]
		for _, h := range []string{d.Header, d.Key, fmt.Sprintf("%s (column %d)", d.Key, i+1)} {
			if k := strings.ToLower(strings.TrimSpace(h)); !seen[k] {
				d.Header, seen[k] = h, true
				break
			}
		}
	}
	return defs
}

// allows reports whether role may export the column, and why not.
func (d columnDef) allows(role caller.Role) (bool, string) {
	switch {
	case role == caller.RoleAdmin:
		return true, ""
	case d.sensitive:
		return false, "is marked sensitive: only ADMINs export it"
	case d.personal && role != caller.RoleOperator:
		return false, "is personal data: VIEWERs export only card ID, validity, status and fields not marked personal"
	}
	return true, ""
}

// chooseColumns resolves the requested column keys for role, or every
// column role may export when none are named. Errors name each bad entry
// by its path (columns[i]).
func chooseColumns(t *templates.Template, role caller.Role, keys []string) ([]columnDef, error) {
	defs := catalogue(t)
	if keys == nil {
		var out []columnDef
		for _, d := range defs {
			if ok, _ := d.allows(role); ok {
				out = append(out, d)
			}
		}
		return out, nil
	}
	var invalid, forbidden apperr.Fields
	if len(keys) == 0 {
		invalid.Add("columns", "name at least one column (or leave columns out for every column you may export)")
	}
	byKey := map[string]columnDef{}
	for _, d := range defs {
		byKey[d.Key] = d
	}
	seen := map[string]bool{}
	var out []columnDef
	for i, k := range keys {
		path := fmt.Sprintf("columns[%d]", i)
		k = strings.TrimSpace(k)
		d, ok := byKey[k]
		switch {
		case never[k] != "":
			forbidden.Add(path, "%q: %s", k, never[k])
		case !ok:
			invalid.Add(path, "%q is neither an attribute (%s) nor a field of template %q", k, strings.Join(attributeKeys(), ", "), t.Name)
		case seen[k]:
			invalid.Add(path, "%q is named twice", k)
		default:
			if allowed, why := d.allows(role); !allowed {
				forbidden.Add(path, "%q %s", k, why)
				continue
			}
			out = append(out, d)
		}
		seen[k] = true
	}
	if len(forbidden) > 0 {
		// A column the role may not read is a permission problem, not a
		// typo: FORBIDDEN, still naming every column concerned.
		return nil, &apperr.Error{Code: apperr.Forbidden, Message: fmt.Sprintf("role %s may not export these columns", role), Fields: append(forbidden, invalid...)}
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// reapply drops, when a job runs, stored columns the template no longer
// has or the export's role may no longer read (a field marked sensitive
// since the export was asked for), and refreshes their definitions.
func reapply(t *templates.Template, role caller.Role, cols []Column) []columnDef {
	byKey := map[string]columnDef{}
	for _, d := range catalogue(t) {
		byKey[d.Key] = d
	}
	var out []columnDef
	for _, c := range cols {
		d, ok := byKey[c.Key]
		if ok {
			if allowed, _ := d.allows(role); allowed {
				out = append(out, d)
			}
		}
	}
	return out
}

func attributeKeys() []string {
	return []string{ColCardID, ColUniqueIdentifier, ColBarcodeValue, ColRecipientEmail, ColValidFrom, ColExpiresAt,
		ColStatus, ColCredentialState, ColCreatedAt, ColUpdatedAt}
}

func columnsOf(defs []columnDef) []Column {
	out := make([]Column, len(defs))
	for i, d := range defs {
		out[i] = d.Column
	}
	return out
}

// auditColumns are the columns of an audit trail export.
var auditColumns = []Column{
	{"id", "Event ID"}, {"at", "Time"}, {"actor_kind", "Actor kind"}, {"actor_id", "Actor ID"}, {"actor", "Actor"},
	{"action", "Action"}, {"target_kind", "Target kind"}, {"target_id", "Target ID"}, {"request_id", "Request ID"}, {"details", "Details"},
}

// cardIDWritten is how the file writes a canonical card ID so the import,
// reading it in the template's format, gets the same canonical ID back.
// Only HEX_REVERSED needs care: its canonical form is the bytes in normal
// order, and the import reverses what it reads.
func cardIDWritten(format cardid.Format, col string) string {
	if format != cardid.HexReversed {
		return col
	}
	return `(SELECT string_agg(substr(` + col + `, i, 2), '' ORDER BY i DESC) FROM generate_series(1, length(` + col + `) - 1, 2) AS i)`
}
