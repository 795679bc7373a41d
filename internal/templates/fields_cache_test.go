package templates

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestDecodedFieldsFollowTheStoredJSON(t *testing.T) {
	id := uuid.New()
	v1 := []byte(`[{"key":"first_name","label":"First name","type":"TEXT","required":true,"side":"FRONT","maxLength":40,"personal":false,"sensitive":false}]`)
	first, err := fieldsOf(id, v1)
	require.NoError(t, err)
	require.Equal(t, "First name", first[0].Label)
	again, err := fieldsOf(id, append([]byte(nil), v1...))
	require.NoError(t, err)
	require.Same(t, &first[0], &again[0], "the same JSON is decoded once")
	require.Equal(t, len(again), cap(again), "a caller's append cannot write into the shared fields")

	// The template changed: its new JSON is decoded, not the old fields served.
	v2 := []byte(`[{"key":"first_name","label":"Given name","type":"TEXT","required":true,"side":"FRONT","maxLength":40,"personal":false,"sensitive":false}]`)
	changed, err := fieldsOf(id, v2)
	require.NoError(t, err)
	require.Equal(t, "Given name", changed[0].Label)

	_, err = fieldsOf(uuid.New(), []byte(`{"not": "a list"}`))
	require.Error(t, err)
}
