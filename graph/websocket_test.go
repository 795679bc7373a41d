package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// appendNext's fast path must say exactly what encoding/json would.
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
		require.NoError(t, json.Unmarshal(appendNext(nil, c.id, c.resp), &got), "%s: valid JSON", c.id)
		require.NoError(t, json.Unmarshal(want, &expected))
		require.Equal(t, expected, got, c.id)
	}
}

// frameText's header must say what RFC 6455 says for every length class:
// FIN and text, unmasked, and the length in 7, 7+16 or 7+64 bits.
func TestFrameTextWritesTheHeaderOfEveryLength(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 300, 65535, 65536, 70000} {
		msg := bytes.Repeat([]byte("x"), n)
		frame := frameText(append(make([]byte, wsFrameRoom), msg...))
		require.Equal(t, byte(0x81), frame[0], "%d: FIN and text", n)
		var length, header int
		switch l := int(frame[1]); {
		case l < 126:
			length, header = l, 2
		case l == 126:
			length, header = int(binary.BigEndian.Uint16(frame[2:])), 4
		default:
			length, header = int(binary.BigEndian.Uint64(frame[2:])), 10
		}
		require.Equal(t, n, length, "%d: the length", n)
		require.Equal(t, msg, frame[header:], "%d: the message follows the header", n)
		require.Equal(t, n < 126, header == 2, "%d: the shortest header", n)
	}
}

// appendNextData's id must read back as the id, however odd.
func TestNextMessageIDsReadBack(t *testing.T) {
	for _, id := range []string{"1", "a-b_c", `quote"back\`, "<&>", "é", "\u2028", "tab\there"} {
		var m wsMessage
		require.NoError(t, json.Unmarshal(appendNextData(nil, id, []byte(`{}`)), &m), id)
		require.Equal(t, id, m.ID)
		require.Equal(t, "next", m.Type)
	}
}
