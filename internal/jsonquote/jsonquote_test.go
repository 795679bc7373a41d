package jsonquote

import (
	"encoding/json"
	"testing"
)

func FuzzAppendQuotesLikeEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "1", "sub-1", `say "hi"`, "a\\b", "<&>", "Zoë", "line\nbreak", "\x7f", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := Append([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("%q: got %s, want %s", s, got[1:], want)
		}
	})
}
