package auth

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
)

// Verified tokens are remembered, but a remembered token still expires and
// a changed one is still refused.
func TestVerifiedTokensStillExpire(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	s, err := NewSigner(make([]byte, 32), 15*time.Minute)
	require.NoError(t, err)
	s.now = func() time.Time { return now }
	who := &caller.Principal{OperatorID: uuid.New(), OrgID: uuid.New(), Role: caller.RoleViewer, Email: "v@acme.test"}
	token, _, err := s.Issue(who)
	require.NoError(t, err)

	for range 2 { // checked, then remembered
		p, err := s.Verify(token)
		require.NoError(t, err)
		require.Equal(t, *who, *p)
		p.Role = caller.RoleAdmin // a caller changing its copy changes nothing remembered
	}
	p, err := s.Verify(token)
	require.NoError(t, err)
	require.Equal(t, caller.RoleViewer, p.Role)

	tampered := token[:len(token)-2] + "xx"
	_, err = s.Verify(tampered)
	require.Equal(t, apperr.Unauthenticated, apperr.CodeOf(err))

	now = now.Add(15*time.Minute + tokenLeeway + time.Second)
	_, err = s.Verify(token)
	require.Error(t, err, "a remembered token expires like any other")
	require.Contains(t, err.Error(), "expired")
}
