package graph

import (
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// nextMessage's fast path must say exactly what encoding/json would.
func TestNextMessageEncodesLikeEncodingJSON(t *testing.T) {
	for _, c := range []struct {
		id   string
		resp *graphql.Response
	}{
		{"1", &graphql.Response{Data: json.RawMessage(`{"importProgress":{"phase":"DONE","processed":3}}`)}},
		{`quote"and\back`, &graphql.Response{Data: json.RawMessage(`{"a":"é \u2028"}`)}},
		{"err", &graphql.Response{Data: json.RawMessage(`null`), Errors: gqlerror.List{{Message: "no", Extensions: map[string]any{"code": "NOT_FOUND"}}}}},
		{"ext", &graphql.Response{Data: json.RawMessage(`{}`), Extensions: map[string]any{"cost": 3}}},
	} {
		payload, err := json.Marshal(c.resp)
		require.NoError(t, err)
		want, err := json.Marshal(wsMessage{ID: c.id, Type: "next", Payload: payload})
		require.NoError(t, err)
		var got, expected any
		require.NoError(t, json.Unmarshal(nextMessage(c.id, c.resp), &got), "%s: valid JSON", c.id)
		require.NoError(t, json.Unmarshal(want, &expected))
		require.Equal(t, expected, got, c.id)
	}
}
