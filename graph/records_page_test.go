package graph

import (
	"bytes"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// The page renderer must quote strings and times exactly as gqlgen's own
// marshallers do, or a page would differ from what the executor writes.
func FuzzPageStringsAreQuotedLikeGqlgen(f *testing.F) {
	for _, s := range []string{"", "plain", `say "hi"`, "back\\slash", "tab\tnl\ncr\r", "ctrl\x00\x01\x1f\x7f", "Zoë 山田", "\xff\xfe bad UTF-8", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		graphql.MarshalString(s).MarshalGQL(&want)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%q: renderer %s, gqlgen %s", s, got, want.Bytes())
		}
	})
}

func TestPageTimesAreWrittenLikeGqlgen(t *testing.T) {
	zurich, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		zurich = time.FixedZone("CET", 3600)
	}
	for _, tm := range []time.Time{
		time.Date(2026, 11, 24, 21, 2, 17, 626787000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2030, 6, 7, 8, 9, 10, 1, zurich),
	} {
		var want bytes.Buffer
		graphql.MarshalTime(tm).MarshalGQL(&want)
		if got := appendTime(nil, tm); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%v: renderer %s, gqlgen %s", tm, got, want.Bytes())
		}
	}
}
