package main

import (
	"archive/zip"
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestImportPhotosFromAZip(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	png1 := recPNG(t, 8, 8, false)
	png2 := recPNG(t, 9, 9, true)
	archive := zipOf(t, map[string][]byte{
		"photos/00001.png": png1, // matched by card ID (canonical 1)
		"2.png":            png2,
		"orphan.png":       png1,
		"notes.txt":        []byte("not a photo"),
		"broken.png":       []byte("\x89PNG\r\n\x1a\nnot really"),
		"__MACOSX/._2.png": []byte("resource fork"),
	})
	file := "Card ID,Email,First name\n1,a@acme.test,A\n2,b@acme.test,B\n3,c@acme.test,C\n"
	id := admin.createImport(tid, "people.csv", file, nil).requireOK(t).str("createImport.id")
	admin.upload(`mutation($id: ID!, $z: Upload!) { uploadImportPhotos(importId: $id, zip: $z) { id } }`, vars{"id": id}, map[string][]byte{"z": archive}).requireOK(t)

	admin.preview(id).requireOK(t)
	rep := admin.do(`query($id: ID!) { import(id: $id) { photos { uploaded matched unmatched invalid { name reason } } } }`, vars{"id": id}).requireOK(t)
	require.Equal(t, 5, rep.num("import.photos.uploaded"), "the resource fork is ignored")
	require.Equal(t, 2, rep.num("import.photos.matched"))
	require.Equal(t, []any{"orphan.png"}, rep.get("import.photos.unmatched"))
	invalid := map[string]string{}
	for _, p := range rep.get("import.photos.invalid").([]any) {
		m := p.(map[string]any)
		invalid[m["name"].(string)] = m["reason"].(string)
	}
	require.Contains(t, invalid["notes.txt"], "not a .jpg, .jpeg or .png file")
	require.Contains(t, invalid["broken.png"], "damaged png")

	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
	require.Equal(t, "SUCCEEDED", admin.waitImport(id).str("import.outcome"))
	res := admin.do(`query($t: ID!) { records(templateId: $t, orderBy: {field: CARD_ID}) { edges { node { cardId photoUrl } } } }`, vars{"t": tid}).requireOK(t)
	urls := map[string]any{}
	for _, e := range res.get("records.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		urls[n["cardId"].(string)] = n["photoUrl"]
	}
	require.NotNil(t, urls["1"])
	require.NotNil(t, urls["2"])
	require.Nil(t, urls["3"], "no photo for card 3")
	resp, body := admin.httpGet(s.URL + urls["2"].(string))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, png2, body)

	t.Run("photos of an import that ran can no longer change", func(t *testing.T) {
		admin.upload(`mutation($id: ID!, $z: Upload!) { uploadImportPhotos(importId: $id, zip: $z) { id } }`, vars{"id": id}, map[string][]byte{"z": archive}).requireCode(t, "FAILED_PRECONDITION")
	})
	t.Run("importing the same photos again changes nothing", func(t *testing.T) {
		again := admin.createImport(tid, "people.csv", file, nil).requireOK(t).str("createImport.id")
		admin.upload(`mutation($id: ID!, $z: Upload!) { uploadImportPhotos(importId: $id, zip: $z) { id } }`, vars{"id": again}, map[string][]byte{"z": archive}).requireOK(t)
		require.Equal(t, 3, admin.preview(again).requireOK(t).num("previewImport.counts.unchanged"))
	})
	t.Run("a file that is not a ZIP is refused", func(t *testing.T) {
		fresh := admin.createImport(tid, "people.csv", file, nil).requireOK(t).str("createImport.id")
		e := admin.upload(`mutation($id: ID!, $z: Upload!) { uploadImportPhotos(importId: $id, zip: $z) { id } }`, vars{"id": fresh}, map[string][]byte{"z": []byte("plain text")}).requireCode(t, "VALIDATION_FAILED")
		require.Contains(t, e.fieldErrors()["zip"], "not a ZIP archive")
	})
}
