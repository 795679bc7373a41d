package accesslist_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/readers/gateway/accesslist"
)

// door is a gateway whose list holds one record with a wallet credential,
// and the organisation's published key.
type door struct {
	list   *accesslist.List
	record accesslist.Entry
	wallet *wallet
}

func newDoor(t *testing.T) *door {
	t.Helper()
	record := active("0042")
	w := newWallet(t, record)
	l := listOf(record, active("0043"))
	l.SetKeys(w.published(t))
	l.SetOrgID(w.org)
	return &door{list: l, record: record, wallet: w}
}

func (d *door) scan(t *testing.T, code string, now time.Time) accesslist.Decision {
	t.Helper()
	return d.list.DecideCode(context.Background(), code, now)
}

func TestAWalletCodeOpensTheDoorOnce(t *testing.T) {
	t.Parallel()
	d := newDoor(t)
	code := d.wallet.code(t, t0)

	first := d.scan(t, code, t0.Add(2*time.Second))
	requireGranted(t, first, d.record.RecordID)
	require.Equal(t, "0042", first.CardID)

	requireRefused(t, d.scan(t, code, t0.Add(3*time.Second)), accesslist.Replayed)

	// The next code the phone shows opens again.
	requireGranted(t, d.scan(t, d.wallet.code(t, t0.Add(5*time.Second)), t0.Add(6*time.Second)), d.record.RecordID)
	// An older code, though never shown before, is refused too: the
	// credential has moved on.
	requireRefused(t, d.scan(t, d.wallet.code(t, t0.Add(4*time.Second)), t0.Add(6*time.Second)), accesslist.Replayed)
}

func TestWalletCodesAreRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(t *testing.T, d *door) (code string, now time.Time)
		reason string
	}{
		{name: "a code shown 31 seconds after the phone made it is stale",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				return d.wallet.code(t, t0), t0.Add(31 * time.Second)
			}, reason: accesslist.StaleCode},
		{name: "a code from a phone whose clock is a minute fast is stale",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				return d.wallet.code(t, t0.Add(time.Minute)), t0
			}, reason: accesslist.StaleCode},
		{name: "a revoked credential's code is refused once the revocation arrives",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.ApplyRevocations([]uuid.UUID{d.wallet.claims.ID}, "r:1")
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.Revoked},
		{name: "a code signed by another organisation's key is refused",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				other := newWallet(t, d.record)
				return other.code(t, t0), t0
			}, reason: accesslist.BadSignature},
		{name: "a credential of another organisation is refused even when its key is trusted",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				// The other organisation's key slipped into the key set
				// (a JWKS does not say whose a key is); the gateway's
				// organisation still rules it out.
				other := newWallet(t, d.record)
				d.list.SetKeys(append(d.wallet.published(t), other.published(t)...))
				return other.code(t, t0), t0
			}, reason: accesslist.BadSignature},
		{name: "a code whose key is not among the published keys is refused",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.SetKeys(nil)
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.BadSignature},
		{name: "a code signed by another phone is refused",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				credential := d.wallet.credential
				d.wallet.reissue(t, func(*credentials.Claims) {})
				code, err := credentials.SignCode(credential, t0, d.wallet.phone)
				require.NoError(t, err)
				return code, t0
			}, reason: accesslist.BadSignature},
		{name: "text that is not a wallet code is refused",
			setup: func(*testing.T, *door) (string, time.Time) {
				return "https://example.com/menu", t0
			}, reason: accesslist.BadSignature},
		{name: "a credential not yet valid is refused",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.wallet.reissue(t, func(c *credentials.Claims) { c.NotBefore = t0.Add(time.Hour) })
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.NotYetValid},
		{name: "an expired credential is refused",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.wallet.reissue(t, func(c *credentials.Claims) {
					c.NotBefore, c.ExpiresAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
				})
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.Expired},
		{name: "a valid credential of a record suspended on the server is refused as suspended",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.Apply([]accesslist.Change{{Entry: with(d.record, func(e *accesslist.Entry) { e.Status = accesslist.StatusSuspended })}}, "d:2")
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.Suspended},
		{name: "a valid credential of a record archived on the server is refused as archived",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.Apply([]accesslist.Change{{Entry: with(d.record, func(e *accesslist.Entry) { e.Status = accesslist.StatusArchived })}}, "d:2")
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.Archived},
		{name: "a valid credential of a record whose validity ended on the server is refused as expired",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.Apply([]accesslist.Change{{Entry: with(d.record, func(e *accesslist.Entry) { e.ExpiresAt = at(t0.Add(-time.Minute)) })}}, "d:2")
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.Expired},
		{name: "a valid credential of a record not yet valid on the server is refused as not yet valid",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.Apply([]accesslist.Change{{Entry: with(d.record, func(e *accesslist.Entry) { e.ValidFrom = at(t0.Add(time.Hour)) })}}, "d:2")
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.NotYetValid},
		{name: "a valid credential of a record deleted on the server is refused as unknown",
			setup: func(t *testing.T, d *door) (string, time.Time) {
				d.list.Apply([]accesslist.Change{{Entry: d.record, Removed: true}}, "d:2")
				return d.wallet.code(t, t0), t0
			}, reason: accesslist.UnknownCard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDoor(t)
			code, now := tt.setup(t, d)
			got := d.scan(t, code, now)
			requireRefused(t, got, tt.reason)
			if tt.reason == accesslist.Suspended || tt.reason == accesslist.UnknownCard {
				// The operator sees whose credential it was.
				require.Equal(t, d.record.RecordID, *got.RecordID)
				require.Equal(t, "0042", got.CardID)
			}
		})
	}
}

func TestARevocationStopsACodeThatWorkedBefore(t *testing.T) {
	t.Parallel()
	d := newDoor(t)
	requireGranted(t, d.scan(t, d.wallet.code(t, t0), t0), d.record.RecordID)
	d.list.ApplyRevocations([]uuid.UUID{d.wallet.claims.ID}, "r:9")
	requireRefused(t, d.scan(t, d.wallet.code(t, t0.Add(5*time.Second)), t0.Add(5*time.Second)), accesslist.Revoked)
	// The record's card is another matter: revocation is of the phone.
	requireGranted(t, d.list.DecideCard("0042", t0), d.record.RecordID)
}

func TestCodesScannedAtSeveralDoorsAtOnceAreEachAcceptedOnce(t *testing.T) {
	t.Parallel()
	d := newDoor(t)
	code := d.wallet.code(t, t0)
	var mu sync.Mutex
	reasons := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got := d.list.DecideCode(context.Background(), code, t0.Add(time.Second))
			mu.Lock()
			reasons[got.Reason]++
			mu.Unlock()
		})
	}
	// Cards keep being decided and pages applied meanwhile.
	wg.Go(func() {
		for range 100 {
			assert.True(t, d.list.DecideCard("0043", t0).Granted)
			d.list.Apply([]accesslist.Change{{Entry: active("0100")}}, "d:3")
		}
	})
	wg.Wait()
	require.Equal(t, map[string]int{"": 1, accesslist.Replayed: 7}, reasons)
}
