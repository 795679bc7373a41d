package templates

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckValue(t *testing.T) {
	t.Parallel()
	sel := Field{Key: "dept", Type: TypeSelect, Options: []string{"Sales", "Engineering"}}
	cases := []struct {
		name   string
		field  Field
		in     string
		want   string
		reason string
	}{
		{"text is trimmed", Field{Type: TypeText}, "  Ada  ", "Ada", ""},
		{"an empty optional value is fine", Field{Type: TypeText}, "   ", "", ""},
		{"an empty required value is refused", Field{Type: TypeText, Required: true}, "", "", "is required"},
		{"text over the maximum length is refused", Field{Type: TypeText, MaxLength: 3}, "abcd", "", "is 4 characters long, at most 3 allowed"},
		{"length counts characters, not bytes", Field{Type: TypeText, MaxLength: 3}, "äöü", "äöü", ""},
		{"a NUL byte is refused", Field{Type: TypeText}, "a\x00b", "", "contains a NUL character"},
		{"invalid UTF-8 is refused", Field{Type: TypeText}, "a\xffb", "", "is not valid UTF-8"},
		{"a decimal number", Field{Type: TypeNumber}, "-12.50", "-12.50", ""},
		{"a number with letters", Field{Type: TypeNumber}, "12a", "", `"12a" is not a number`},
		{"an ISO date", Field{Type: TypeDate}, "2026-02-28", "2026-02-28", ""},
		{"a dotted European date becomes ISO", Field{Type: TypeDate}, "28.02.2026", "2026-02-28", ""},
		{"an impossible date", Field{Type: TypeDate}, "2026-02-30", "", `"2026-02-30" is not a date (use YYYY-MM-DD)`},
		{"an e-mail is lower-cased", Field{Type: TypeEmail}, "Ada@Example.COM", "ada@example.com", ""},
		{"an e-mail without domain dot", Field{Type: TypeEmail}, "ada@localhost", "", `"ada@localhost" is not a valid e-mail address`},
		{"an e-mail with a display name", Field{Type: TypeEmail}, "Ada <ada@example.com>", "", `"Ada <ada@example.com>" is not a valid e-mail address`},
		{"a phone with spacing becomes E.164", Field{Type: TypePhone}, "+41 44 668 18 00", "+41446681800", ""},
		{"a phone with 00 prefix becomes E.164", Field{Type: TypePhone}, "0041446681800", "+41446681800", ""},
		{"a national phone number is refused", Field{Type: TypePhone}, "044 668 18 00", "", `"044 668 18 00" is not an E.164 phone number (e.g. +41446681800)`},
		{"a country alpha-2 is upper-cased", Field{Type: TypeCountry}, "ch", "CH", ""},
		{"a country alpha-3 becomes alpha-2", Field{Type: TypeCountry}, "CHE", "CH", ""},
		{"a made-up country code", Field{Type: TypeCountry}, "XX", "", `"XX" is not an ISO 3166-1 country code`},
		{"a region that is not a country", Field{Type: TypeCountry}, "EU", "", `"EU" is not an ISO 3166-1 country code`},
		{"a select option matches case-insensitively", sel, "sales", "Sales", ""},
		{"an unknown select option", sel, "Marketing", "", `"Marketing" is not one of the options Sales, Engineering`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := CheckValue(tc.field, tc.in)
			require.Equal(t, tc.reason, reason)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNormaliseReportsEveryProblemOfATemplate(t *testing.T) {
	t.Parallel()
	in := Input{Name: " ", Symbology: "BARCODE", CardIDFormat: "OCTAL", Fields: []Field{
		{Key: "First Name", Type: TypeText},
		{Key: "card_id", Type: TypeText},
		{Key: "dept", Type: TypeSelect},
		{Key: "dept", Type: TypeText, Options: []string{"x"}},
		{Key: "x", Type: "COLOUR"},
	}}
	err := normalise(&in)
	require.Error(t, err)
	for _, want := range []string{"input.name", "input.symbology", "input.cardIdFormat", "input.fields[0].key", "input.fields[1].key: \"card_id\" is reserved",
		"input.fields[2].options", "input.fields[3].key: \"dept\" is used by another field", "input.fields[3].options: only SELECT", "input.fields[4].type"} {
		require.True(t, strings.Contains(err.Error(), want), "error %q mentions %q", err, want)
	}
}
