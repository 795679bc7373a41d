package outbox

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
)

func TestListShowsAdminsTheirOrganisationsMailWithoutLinks(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noServer: true})
	other := uuid.New()
	b.exec(`INSERT INTO organisations (id, name) VALUES ($1, 'Other')`, other)
	var want []string
	for i := range 5 {
		rcpt := recipient(i)
		// One statement each, so every message has its own created_at.
		require.NoError(t, b.svc.Write(b.ctx, b.db.Bun, b.invitation(rcpt, "https://lintel.test/i/secret-"+rcpt)))
		want = append([]string{rcpt}, want...)
	}
	theirs := b.notice("theirs@example.org")
	theirs.OrgID = other
	require.NoError(t, b.svc.Write(b.ctx, b.db.Bun, theirs))

	as := func(org uuid.UUID, role caller.Role) context.Context {
		return caller.WithPrincipal(b.ctx, &caller.Principal{OperatorID: uuid.New(), OrgID: org, Role: role, Email: "op@example.org"})
	}
	admin := as(b.org, caller.RoleAdmin)

	t.Run("pages walk the organisation's mail newest first", func(t *testing.T) {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			page, err := b.svc.List(admin, 2, after)
			require.NoError(t, err)
			for _, it := range page.Items {
				got = append(got, it.Recipient)
				require.Equal(t, KindInvitation, it.Kind)
				require.Equal(t, StatusPending, it.Status)
				require.NotNil(t, it.RecordID)
				require.Contains(t, it.Text, "Open this link on your phone to add the card:\n\n"+HiddenLink+"\n")
				require.NotContains(t, it.Text, "secret-")
				require.NotContains(t, it.Text, LinkMarker)
			}
			if !page.HasNext {
				require.Empty(t, page.EndCursor)
				break
			}
			after = page.EndCursor
		}
		require.Equal(t, want, got)
	})
	t.Run("another organisation's admin sees only its own", func(t *testing.T) {
		page, err := b.svc.List(as(other, caller.RoleAdmin), 0, "")
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		require.Equal(t, "theirs@example.org", page.Items[0].Recipient)
		require.False(t, page.HasNext)
	})
	t.Run("an operator may not read the outbox", func(t *testing.T) {
		_, err := b.svc.List(as(b.org, caller.RoleOperator), 0, "")
		require.Equal(t, apperr.Forbidden, apperr.CodeOf(err))
		_, err = b.svc.List(b.ctx, 0, "")
		require.Equal(t, apperr.Unauthenticated, apperr.CodeOf(err))
	})
	t.Run("a cursor that is not one is refused", func(t *testing.T) {
		for _, c := range []string{"nonsense", "MjAyNnxub3QtYS11dWlk", strings.Repeat("A", 40)} {
			_, err := b.svc.List(admin, 0, c)
			require.Equal(t, apperr.Invalid, apperr.CodeOf(err), c)
		}
	})
	t.Run("page sizes are bounded", func(t *testing.T) {
		_, err := b.svc.List(admin, MaxPageSize+1, "")
		require.Equal(t, apperr.ValidationFailed, apperr.CodeOf(err))
		page, err := b.svc.List(admin, 0, "")
		require.NoError(t, err)
		require.Len(t, page.Items, 5, "the default page holds them all")
	})
}
