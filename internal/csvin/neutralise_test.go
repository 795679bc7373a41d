package csvin_test

import (
	"testing"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/stretchr/testify/require"
)

func TestNeutralise(t *testing.T) {
	cases := []struct {
		name, cell, neutral string
	}{
		{"an equals sign is prefixed", "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"a plus sign is prefixed", "+1", "'+1"},
		{"a minus sign is prefixed", "-2", "'-2"},
		{"an at sign is prefixed", "@SUM(1)", "'@SUM(1)"},
		{"a leading tab is prefixed", "\t=1", "'\t=1"},
		{"a leading carriage return is prefixed", "\r=1", "'\r=1"},
		{"a value already starting with a quote and a formula character gets one more quote", "'=1", "''=1"},
		{"plain text is left alone", "Ada", "Ada"},
		{"a formula character later in the cell is left alone", "a=b", "a=b"},
		{"a quote before plain text is left alone", "'abc", "'abc"},
		{"a lone quote is left alone", "'", "'"},
		{"an empty cell is left alone", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.neutral, csvin.Neutralise(tc.cell))
			require.Equal(t, tc.cell, csvin.Unneutralise(tc.neutral), "round trip")
		})
	}
	t.Run("Unneutralise strips only one quote before a formula character", func(t *testing.T) {
		require.Equal(t, "=1", csvin.Unneutralise("'=1"))
		require.Equal(t, "'=1", csvin.Unneutralise("''=1"))
		require.Equal(t, "'abc", csvin.Unneutralise("'abc"))
		require.Equal(t, "=1", csvin.Unneutralise("=1"))
	})
}

func FuzzNeutralise(f *testing.F) {
	for _, s := range []string{"", "'", "''", "=1", "'=1", "''-", "abc", "\t", "'\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := csvin.Neutralise(s)
		if csvin.Unneutralise(n) != s {
			t.Fatalf("Unneutralise(Neutralise(%q)) = %q", s, csvin.Unneutralise(n))
		}
		if n != "" && n[0] != '\'' {
			switch n[0] {
			case '=', '+', '-', '@', '\t', '\r':
				t.Fatalf("Neutralise(%q) = %q starts with a formula character", s, n)
			}
		}
	})
}
