package exports

import (
	"bytes"
	"context"
	"encoding/csv"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/csvin"
	"github.com/lintel/lintel/internal/templates"
	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testdb.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// cellsThatMatter are the edge cases of formula neutralisation, and
// random strings over the characters that matter.
func cellsThatMatter() []string {
	cells := []string{"", "'", "''", "'''", "=", "+", "-", "@", "\t", "\r", "=SUM(A1)", "'=x", "''=x", "'a", "a=b", " =x", "-5",
		"'\tx", "'\rx", "''@", "'x=", "é=", "=é", "\n=", "x\n=y", "😀", "'😀", "'-"}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("'=+-@\t\ra é\n")
	for range 2000 {
		n := r.IntN(6)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		cells = append(cells, b.String())
	}
	return cells
}

func TestTheFileIsWhatEncodingCSVWritesOfNeutralisedCells(t *testing.T) {
	t.Parallel()
	cells := append(cellsThatMatter(), `\.`, " lead", "trail ", "a,b", `q"q`, "\"", "x\r\ny", "\u00a0nbsp", "\u2003em")
	r := rand.New(rand.NewPCG(3, 4))
	var mine []byte
	var want bytes.Buffer
	w := csv.NewWriter(&want)
	for range 3000 {
		n := 1 + r.IntN(5)
		raw := make([][]byte, n)
		rec := make([]string, n)
		for i := range n {
			c := cells[r.IntN(len(cells))]
			raw[i], rec[i] = []byte(c), csvin.Neutralise(c)
		}
		mine = appendRow(mine, raw)
		require.NoError(t, w.Write(rec))
	}
	w.Flush()
	require.Equal(t, want.String(), string(mine))
	require.Equal(t, "a,,b\n", string(appendRow(nil, [][]byte{[]byte("a"), nil, []byte("b")})), "NULL is an empty cell")
}

func TestTheSQLNeutralisationIsCsvinsNeutralise(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	cells := cellsThatMatter()
	rows, err := conn.Query(context.Background(), `SELECT `+neutraliseSQL("c")+` FROM unnest($1::text[]) WITH ORDINALITY AS u(c, n) ORDER BY n`, cells)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, got, len(cells))
	for i, c := range cells {
		require.Equal(t, csvin.Neutralise(c), got[i], "cell %q", c)
		require.Equal(t, c, csvin.Unneutralise(got[i]), "cell %q reads back", c)
	}
	var null *string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT `+neutraliseSQL("NULL::text")).Scan(&null))
	require.Nil(t, null, "a missing value stays missing")
}

func TestInstantsAreWrittenInRFC3339AndReadBackExactly(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	ctx := context.Background()
	// Whatever the session's time zone, the file says UTC.
	_, err := conn.Exec(ctx, `SET TimeZone = 'America/Sao_Paulo'; SET DateStyle = 'ISO, YMD'`)
	require.NoError(t, err)
	for _, in := range []string{"2026-11-24T09:30:00Z", "2026-03-01T08:30:00.123456Z", "2026-12-31T23:59:59.999999+02:00", "1999-01-01T00:00:00.5Z"} {
		want, err := time.Parse(time.RFC3339Nano, in)
		require.NoError(t, err)
		var out string
		require.NoError(t, conn.QueryRow(ctx, `SELECT `+instant("$1::timestamptz"), in).Scan(&out))
		got, err := time.Parse(time.RFC3339, out)
		require.NoError(t, err, out)
		require.True(t, got.Equal(want), "%s → %s", in, out)
		require.True(t, strings.HasSuffix(out, "Z"), out)
	}
}

func TestHexReversedCardIDsAreWrittenSoTheyReadBackTheSame(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	for _, input := range []string{"C3B2A104", "04a1b200", "0x01:02:03", "00", "ff", "0123456789ABCDEF0123456789ABCDEF"} {
		canonical, err := cardid.Parse(cardid.HexReversed, input)
		require.NoError(t, err)
		var written string
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT `+cardIDWritten(cardid.HexReversed, "$1::text"), canonical).Scan(&written))
		back, err := cardid.Parse(cardid.HexReversed, written)
		require.NoError(t, err)
		require.Equal(t, canonical, back, "%s stored as %s, written as %s", input, canonical, written)
	}
	require.Equal(t, "card_id", cardIDWritten(cardid.Decimal, "card_id"), "other formats are written as stored")
}

func TestLinksAreBoundToExportOrganisationAndTime(t *testing.T) {
	t.Parallel()
	l := NewLinks(DeriveLinkKey([]byte("0123456789abcdef0123456789abcdef")), time.Minute)
	now := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return now }
	id, org := uuid.New(), uuid.New()
	link, exp := l.link(id, org, nil)
	require.Equal(t, now.Add(time.Minute), exp)
	u, err := url.Parse(link)
	require.NoError(t, err)
	require.Equal(t, "/exports/"+id.String()+"/download", u.Path)
	got, err := l.Verify(id, u.Query())
	require.NoError(t, err)
	require.Equal(t, org, got)

	bad := func(name string, q url.Values, forID uuid.UUID) {
		t.Helper()
		_, err := l.Verify(forID, q)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "invalid or has expired", name)
	}
	with := func(k, v string) url.Values {
		q := u.Query()
		q.Set(k, v)
		return q
	}
	bad("another export", u.Query(), uuid.New())
	bad("another organisation", with("org", uuid.NewString()), id)
	bad("a later expiry", with("expires", "1900000000"), id)
	bad("no signature", with("sig", ""), id)
	bad("garbage", url.Values{"org": {"x"}, "expires": {"y"}, "sig": {"%%"}}, id)
	other := NewLinks(DeriveLinkKey([]byte("another key, just as long as the first one")), time.Minute)
	other.now = l.now
	_, err = other.Verify(id, u.Query())
	require.Error(t, err, "another server's key")
	now = exp
	bad("at expiry", u.Query(), id)

	t.Run("a link never outlives the file", func(t *testing.T) {
		now = time.Unix(1_800_000_000, 0)
		fileGone := now.Add(20 * time.Second)
		_, exp := l.link(id, org, &fileGone)
		require.Equal(t, fileGone, exp)
	})
	t.Run("the link key is not the access-token key", func(t *testing.T) {
		k := []byte("0123456789abcdef0123456789abcdef")
		require.NotEqual(t, k, DeriveLinkKey(k))
		require.Len(t, DeriveLinkKey(k), 32)
	})
}

func TestColumnsPerRole(t *testing.T) {
	t.Parallel()
	tmpl := &templates.Template{Name: "T", Fields: []templates.Field{
		{Key: "first_name", Label: "First name"},
		{Key: "born", Label: "Born", Personal: true},
		{Key: "salary", Label: "Salary", Sensitive: true},
		{Key: "alias", Label: "nick"},
		{Key: "nick", Label: "Card ID"}, // its label is an attribute's header, its key the previous field's label
	}}
	keys := func(role caller.Role) []string {
		defs, err := chooseColumns(tmpl, role, nil)
		require.NoError(t, err)
		var out []string
		for _, d := range defs {
			out = append(out, d.Key)
		}
		return out
	}
	require.Equal(t, []string{"card_id", "unique_identifier", "first_name", "born", "salary", "alias", "nick", "barcode_value", "recipient_email",
		"valid_from", "expires_at", "status", "credential_state", "created_at", "updated_at"}, keys(caller.RoleAdmin))
	require.NotContains(t, keys(caller.RoleOperator), "salary")
	require.Contains(t, keys(caller.RoleOperator), "born")
	require.Equal(t, []string{"card_id", "first_name", "alias", "nick", "valid_from", "expires_at", "status", "credential_state", "created_at", "updated_at"},
		keys(caller.RoleViewer))

	headers := map[string]bool{}
	for _, d := range catalogue(tmpl) {
		h := strings.ToLower(d.Header)
		require.False(t, headers[h], "header %q is unique", d.Header)
		headers[h] = true
	}
	require.Contains(t, headers, "nick (column 7)", "a field whose label and key are both taken gets a unique header")
}
