package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// testMasterKey seals issuing keys and e-mail secrets in tests.
const testMasterKey = "dGVzdCBtYXN0ZXIga2V5IHRoYXQgaXMgMzIgYnl0ZXM="

// testPassword is every test operator's password.
const testPassword = "correct horse battery staple"

// testServer is a complete Lintel server on its own fresh database, served
// over real HTTP by httptest.
type testServer struct {
	t      testing.TB
	URL    string
	DB     *store.DB
	DBURL  string
	Auth   *auth.Service
	app    *app
	client *http.Client
}

// newTestServer starts a server; env overrides configuration variables.
func newTestServer(t testing.TB, env map[string]string) *testServer {
	t.Helper()
	return newTestServerOn(t, env, store.Options{MaxConns: 10})
}

// newTestServerOn is newTestServer with the server's pool opened with opts.
func newTestServerOn(t testing.TB, env map[string]string, opts store.Options) *testServer {
	t.Helper()
	ctx := context.Background()
	// A server may join another's database (env DATABASE_URL); otherwise
	// it gets a fresh one.
	url := env["DATABASE_URL"]
	if url == "" {
		url = testdb.URL(t)
	}
	// The listener comes first so that links the server writes (invitation
	// e-mail, credential issuer) name its real address.
	srv := httptest.NewUnstartedServer(nil)
	defaults := map[string]string{"DATABASE_URL": url, "LINTEL_MASTER_KEY": testMasterKey, "LINTEL_PUBLIC_URL": "http://" + srv.Listener.Addr().String()}
	cfg, _, err := config.Load("test", nil, func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return defaults[k]
	})
	require.NoError(t, err)
	db, err := store.Open(ctx, url, opts)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("LINTEL_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := newApp(ctx, cfg, db, log)
	require.NoError(t, err)
	t.Cleanup(a.stop)
	srv.Config.Handler = a.handler
	srv.Start()
	t.Cleanup(srv.Close)
	return &testServer{t: t, URL: srv.URL, DB: db, DBURL: url, Auth: auth.NewService(db.Bun, nil, auth.DefaultConfig()), app: a, client: srv.Client()}
}

// org creates an organisation and returns its ID.
func (s *testServer) org(name string) uuid.UUID {
	s.t.Helper()
	id, err := s.Auth.CreateOrganisation(context.Background(), name)
	require.NoError(s.t, err)
	return id
}

// operator creates an operator with testPassword and returns a client
// logged in as it.
func (s *testServer) operator(org uuid.UUID, email string, role caller.Role) *gqlClient {
	s.t.Helper()
	_, err := s.Auth.CreateOperator(context.Background(), auth.NewOperator{OrgID: org, Email: email, Role: role, Password: testPassword})
	require.NoError(s.t, err)
	c := s.anonymous()
	res := c.do(`mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }`, vars{"e": email, "p": testPassword})
	res.requireOK(s.t)
	c.Token = res.str("login.accessToken")
	c.RefreshToken = res.str("login.refreshToken")
	return c
}

// anonymous returns a client without a token.
func (s *testServer) anonymous() *gqlClient {
	return &gqlClient{t: s.t, URL: s.URL + "/graphql", http: s.client}
}

type vars = map[string]any

// gqlClient speaks GraphQL over HTTP POST (and multipart for uploads).
type gqlClient struct {
	t            testing.TB
	URL          string
	Token        string
	RefreshToken string
	http         *http.Client
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// gqlResponse is a decoded GraphQL response.
type gqlResponse struct {
	Status int
	Data   map[string]any `json:"data"`
	Errors []gqlError     `json:"errors"`
	Raw    string
}

func (c *gqlClient) post(req *http.Request) *gqlResponse {
	c.t.Helper()
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	out := &gqlResponse{Status: resp.StatusCode, Raw: string(body)}
	require.NoError(c.t, json.Unmarshal(body, out), "response: %s", body)
	return out
}

// do runs a query or mutation.
func (c *gqlClient) do(query string, variables vars) *gqlResponse {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	req, _ := http.NewRequest(http.MethodPost, c.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return c.post(req)
}

// upload runs an operation with files, following the GraphQL multipart
// request specification; files maps a variable name to its content, and
// the optional fileNames a variable name to the file's name.
func (c *gqlClient) upload(query string, variables vars, files map[string][]byte, fileNames ...map[string]string) *gqlResponse {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fileMap := map[string][]string{}
	i := 0
	names := map[string]string{}
	for name := range files {
		key := fmt.Sprint(i)
		fileMap[key] = []string{"variables." + name}
		names[key] = name
		variables[name] = nil
		i++
	}
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	_ = mw.WriteField("operations", string(ops))
	m, _ := json.Marshal(fileMap)
	_ = mw.WriteField("map", string(m))
	for key, name := range names {
		fileName := name + ".bin"
		if len(fileNames) > 0 && fileNames[0][name] != "" {
			fileName = fileNames[0][name]
		}
		fw, _ := mw.CreateFormFile(key, fileName)
		_, _ = fw.Write(files[name])
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.URL, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	return c.post(req)
}

// requireOK fails the test when the response has errors.
func (r *gqlResponse) requireOK(t testing.TB) *gqlResponse {
	t.Helper()
	require.Empty(t, r.Errors, "unexpected errors: %s", r.Raw)
	return r
}

// requireCode asserts the response failed with exactly one error of code.
func (r *gqlResponse) requireCode(t testing.TB, code string) gqlError {
	t.Helper()
	require.NotEmpty(t, r.Errors, "expected %s, got: %s", code, r.Raw)
	require.Equal(t, code, r.Errors[0].Extensions["code"], "response: %s", r.Raw)
	return r.Errors[0]
}

// fieldErrors returns the path → reason list of a VALIDATION_FAILED error.
func (e gqlError) fieldErrors() map[string]string {
	out := map[string]string{}
	fs, _ := e.Extensions["fields"].([]any)
	for _, f := range fs {
		m := f.(map[string]any)
		out[m["path"].(string)] = m["reason"].(string)
	}
	return out
}

// get walks a dotted path ("a.b.0.c") through the data.
func (r *gqlResponse) get(path string) any {
	var cur any = r.Data
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			cur = v[part]
		case []any:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i >= len(v) {
				return nil
			}
			cur = v[i]
		default:
			return nil
		}
	}
	return cur
}

func (r *gqlResponse) str(path string) string {
	s, _ := r.get(path).(string)
	return s
}

func (r *gqlResponse) num(path string) int {
	f, _ := r.get(path).(float64)
	return int(f)
}

// staffTemplate is a template input exercising every field type.
var staffTemplate = vars{
	"name": "Staff", "symbology": "QR", "cardIdFormat": "DECIMAL", "defaultValidityDays": 365,
	"fields": []vars{
		{"key": "first_name", "label": "First name", "type": "TEXT", "required": true, "maxLength": 40},
		{"key": "last_name", "label": "Last name", "type": "TEXT", "required": true},
		{"key": "email", "label": "E-mail", "type": "EMAIL"},
		{"key": "phone", "label": "Phone", "type": "PHONE", "side": "BACK"},
		{"key": "country", "label": "Country", "type": "COUNTRY"},
		{"key": "born", "label": "Born", "type": "DATE", "personal": true},
		{"key": "grade", "label": "Grade", "type": "NUMBER"},
		{"key": "dept", "label": "Department", "type": "SELECT", "options": []string{"Sales", "Engineering"}},
	},
}

// createTemplate creates a template and returns its ID.
func (c *gqlClient) createTemplate(input vars) string {
	c.t.Helper()
	res := c.do(`mutation($in: TemplateInput!) { createTemplate(input: $in) { id } }`, vars{"in": input})
	res.requireOK(c.t)
	return res.str("createTemplate.id")
}

// addRecord adds a valid record and returns its ID.
func (c *gqlClient) addRecord(templateID, cardID, email, first string) string {
	c.t.Helper()
	res := c.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": templateID, "in": vars{
		"cardId": cardID, "uniqueIdentifier": email,
		"fields": []vars{{"key": "first_name", "value": first}, {"key": "last_name", "value": "Tester"}},
	}})
	res.requireOK(c.t)
	return res.str("addRecord.id")
}

// httpGet fetches a path of the server with the client's token.
func (c *gqlClient) httpGet(url string) (*http.Response, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// smoke test for the harness itself and the first user journey.
func TestAnAdminLogsInCreatesATemplateAndAddsARecord(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(staffTemplate)
	rid := admin.addRecord(tid, "00042", "ada@acme.test", "Ada")
	res := admin.do(`query($id: ID!) { record(id: $id) { cardId uniqueIdentifier recipientEmail status credentialState version expiresAt
		template { name } fields { key label value } } }`, vars{"id": rid}).requireOK(t)
	require.Equal(t, "42", res.str("record.cardId"), "card IDs are stored canonical")
	require.Equal(t, "ada@acme.test", res.str("record.recipientEmail"), "recipient defaults to the e-mail identifier")
	require.Equal(t, "ACTIVE", res.str("record.status"))
	require.Equal(t, "NOT_INVITED", res.str("record.credentialState"))
	require.Equal(t, 1, res.num("record.version"))
	require.NotEmpty(t, res.str("record.expiresAt"), "the template's default validity applies")
	require.Equal(t, "Staff", res.str("record.template.name"))
	require.Equal(t, "First name", res.str("record.fields.0.label"))
}
