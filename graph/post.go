package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
)

// postTransport is gqlgen's POST transport with a cheaper way of writing
// the answer. gqlgen hands its response to encoding/json, which validates
// and compacts the already compact data a second time: for a page of 50
// records that was a sixth of the request's CPU. Here the data is written
// as is and only the small rest (errors, extensions) goes through
// encoding/json. Whatever is not a dispatched operation — an unreadable or
// undecodable body, a query that does not parse or validate — is handed to
// gqlgen's own transport, so those answers are exactly what they were.
type postTransport struct{ plain transport.POST }

var _ graphql.Transport = postTransport{}

func (t postTransport) Supports(r *http.Request) bool { return t.plain.Supports(r) }

func (t postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	body, readErr := io.ReadAll(r.Body)
	// gqlgen's transport reads the body again if it has to answer.
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errorReader{readErr}))
	if readErr != nil {
		t.plain.Do(w, r, exec)
		return
	}
	var params graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		t.plain.Do(w, r, exec)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	ctx := r.Context()
	rc, opErr := exec.CreateOperationContext(ctx, &params)
	if opErr != nil {
		t.plain.Do(w, r, exec)
		return
	}
	w.Header().Set("Content-Type", responseContentType(r))
	responses, ctx := exec.DispatchOperation(ctx, rc)
	resp := responses(ctx)
	_, _ = w.Write(appendResponse(make([]byte, 0, len(resp.Data)+256), resp))
}

// errorReader fails with err (io.EOF when err is nil).
type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}

// responseContentType picks the answer's media type from Accept as
// gqlgen's POST transport does when application/graphql-response+json is
// its default.
func responseContentType(r *http.Request) string {
	const graphqlResponse, plainJSON = "application/graphql-response+json", "application/json"
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", graphqlResponse:
			return graphqlResponse
		case plainJSON:
			return plainJSON
		}
	}
	return graphqlResponse
}

// responseTail is the part of graphql.Response after its data, with the
// same names and omissions.
type responseTail struct {
	Label      string         `json:"label,omitempty"`
	Path       ast.Path       `json:"path,omitempty"`
	HasNext    *bool          `json:"hasNext,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// appendResponse appends resp as JSON, with the members in the order
// encoding/json writes them, and the data (already JSON) copied as is.
func appendResponse(b []byte, resp *graphql.Response) []byte {
	b = append(b, '{')
	if len(resp.Errors) > 0 {
		errs, err := json.Marshal(resp.Errors)
		if err != nil {
			// An error whose extensions cannot be encoded is a bug of ours;
			// say so rather than write broken JSON.
			errs = []byte(`[{"message":"internal error: the errors could not be encoded","extensions":{"code":"INTERNAL"}}]`)
		}
		b = append(b, `"errors":`...)
		b = append(b, errs...)
		b = append(b, ',')
	}
	b = append(b, `"data":`...)
	if len(resp.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, resp.Data...)
	}
	tail, err := json.Marshal(responseTail{Label: resp.Label, Path: resp.Path, HasNext: resp.HasNext, Extensions: resp.Extensions})
	if err == nil && len(tail) > 2 {
		b = append(b, ',')
		b = append(b, tail[1:len(tail)-1]...)
	}
	return append(b, '}')
}
