package csvin_test

import (
	"testing"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/stretchr/testify/require"
)

func TestProposeMapping(t *testing.T) {
	targets := append(csvin.CommonTargets(),
		csvin.Target{Key: "department", Label: "Department", Synonyms: []string{"abteilung", "team"}},
	)
	cases := []struct {
		name   string
		header string
		key    string
		conf   float64
	}{
		{"a header equal to a label maps with full confidence", "First name", "first_name", 1},
		{"a header equal to a key maps with full confidence", "card_id", "card_id", 1},
		{"a header equal to a key without separators maps", "FirstName", "first_name", 0.95},
		{"E-mail address maps to the recipient e-mail", "E-mail address", "recipient_email", 0.9},
		{"Prénom maps to the first name despite the accent", "Prénom", "first_name", 0.9},
		{"a shouted, padded CARD_NUMBER maps to the card ID", "  CARD_NUMBER ", "card_id", 0.9},
		{"a synonym without separators maps", "Emailaddress", "recipient_email", 0.85},
		{"punctuation is dropped", "E-Mail:*", "recipient_email", 1},
		{"a template field's own synonyms are used", "Abteilung", "department", 0.9},
		{"the same words in another order map by word set", "Name First", "first_name", 0.8},
		{"a synonym among more words maps with less confidence", "Mobile phone number of the employee", "phone", 0.5 + 0.25*2/6},
		{"an unknown header maps to none", "Favourite colour", "", 0},
		{"a header sharing one word with a name maps to none", "Name", "", 0},
		{"an empty header maps to none", "  ", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := csvin.ProposeMapping([]string{tc.header}, targets)
			require.Equal(t, []csvin.Proposal{{Column: 0, Header: tc.header, Key: tc.key, Confidence: tc.conf}}, got)
		})
	}

	t.Run("two columns both named Email: only the first maps", func(t *testing.T) {
		got := csvin.ProposeMapping([]string{"Name", "Email", "Email"}, targets)
		require.Equal(t, "recipient_email", got[1].Key)
		require.Equal(t, "", got[2].Key)
		require.Equal(t, 0.0, got[2].Confidence)
	})
	t.Run("the more confident column keeps a key both want", func(t *testing.T) {
		got := csvin.ProposeMapping([]string{"Mail", "E-mail"}, targets)
		require.Equal(t, []csvin.Proposal{
			{Column: 0, Header: "Mail", Key: "", Confidence: 0},
			{Column: 1, Header: "E-mail", Key: "recipient_email", Confidence: 1},
		}, got)
	})
	t.Run("a typical export maps every column", func(t *testing.T) {
		header := []string{"Card No.", "Employee ID", "Vorname", "Nachname", "E-Mail", "Telephone", "Country code", "Start date", "Valid until", "Barcode", "Notes"}
		want := []string{"card_id", "unique_identifier", "first_name", "last_name", "recipient_email", "phone", "country", "valid_from", "expires_at", "barcode_value", ""}
		got := csvin.ProposeMapping(header, csvin.CommonTargets())
		require.Len(t, got, len(header))
		for i, p := range got {
			require.Equal(t, i, p.Column)
			require.Equal(t, header[i], p.Header)
			require.Equal(t, want[i], p.Key, header[i])
		}
	})
	t.Run("every common synonym maps to its attribute", func(t *testing.T) {
		for key, synonyms := range csvin.CommonSynonyms {
			for _, s := range synonyms {
				got := csvin.ProposeMapping([]string{s}, csvin.CommonTargets())
				require.Equal(t, key, got[0].Key, s)
			}
		}
	})
	t.Run("no targets map nothing", func(t *testing.T) {
		got := csvin.ProposeMapping([]string{"Email"}, nil)
		require.Equal(t, []csvin.Proposal{{Column: 0, Header: "Email"}}, got)
	})
}
