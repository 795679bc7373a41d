package accesslist_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/readers/gateway/accesslist"
)

// synced is a list as a gateway holds it after a few pages: records of
// every kind, keys, an organisation and revocations.
func synced(t *testing.T) (*accesslist.List, *door) {
	t.Helper()
	d := newDoor(t)
	revokedWallet := newWallet(t, active("0050"))
	l := d.list
	l.Apply([]accesslist.Change{
		{Entry: with(active("0044"), func(e *accesslist.Entry) { e.Status = accesslist.StatusSuspended })},
		{Entry: with(active("0045"), func(e *accesslist.Entry) { e.Status = accesslist.StatusArchived })},
		{Entry: with(active("0046"), func(e *accesslist.Entry) {
			e.ValidFrom, e.ExpiresAt = at(t0.Add(time.Hour)), at(t0.AddDate(1, 0, 0).Add(123*time.Microsecond))
		})},
		{Entry: with(active("0047"), func(e *accesslist.Entry) { e.ExpiresAt = at(t0.Add(-time.Hour)) })},
		{Entry: with(active("0048"), func(e *accesslist.Entry) { e.Status = "PAUSED" })},
		{Entry: active("")},     // a wallet-only record
		{Entry: active("0042")}, // a second template
		{Entry: with(active("9999"), func(e *accesslist.Entry) { e.ValidFrom = at(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) })},
	}, "d:99")
	l.ApplyRevocations([]uuid.UUID{revokedWallet.claims.ID, uuid.New()}, "r:7")
	l.SetKeys(append(d.wallet.published(t), credentials.PublicKey{Kid: "old", OrgID: d.wallet.org,
		Key: make([]byte, 32), Retired: true}))
	return l, d
}

func TestASnapshotRestoresTheListAsItWas(t *testing.T) {
	t.Parallel()
	l, d := synced(t)
	path := filepath.Join(t.TempDir(), "access.snap")
	require.NoError(t, l.Save(path))

	got, err := accesslist.Load(path)
	require.NoError(t, err)
	require.Equal(t, l.Entries(), got.Entries())
	require.Equal(t, l.Len(), got.Len())
	require.Equal(t, "d:99", got.Cursor())
	require.Equal(t, "r:7", got.RevocationCursor())
	require.Equal(t, l.SyncedAt().Truncate(time.Microsecond).UTC(), got.SyncedAt())
	require.Equal(t, d.wallet.org, got.OrgID())

	// And it decides the same, cards and codes.
	for _, card := range []string{"0042", "0043", "0044", "0045", "0046", "0047", "0048", "0049", "9999"} {
		require.Equal(t, l.DecideCard(card, t0), got.DecideCard(card, t0), "card %s", card)
	}
	restored := &door{list: got, record: d.record, wallet: d.wallet}
	requireGranted(t, restored.scan(t, d.wallet.code(t, t0), t0), d.record.RecordID)
	d.list.ApplyRevocations([]uuid.UUID{d.wallet.claims.ID}, "r:8")
	require.NoError(t, d.list.Save(path))
	got, err = accesslist.Load(path)
	require.NoError(t, err)
	requireRefused(t, got.DecideCode(context.Background(), d.wallet.code(t, t0), t0), accesslist.Revoked)
}

func TestAnEmptyListSurvivesASnapshot(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.snap")
	require.NoError(t, accesslist.New().Save(path))
	got, err := accesslist.Load(path)
	require.NoError(t, err)
	require.Zero(t, got.Len())
	require.Empty(t, got.Cursor())
	require.True(t, got.SyncedAt().IsZero())
}

func TestLoadingWithoutASnapshotSaysSo(t *testing.T) {
	t.Parallel()
	_, err := accesslist.Load(filepath.Join(t.TempDir(), "never-saved"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestADamagedSnapshotIsRefused(t *testing.T) {
	t.Parallel()
	l, _ := synced(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "access.snap")
	require.NoError(t, l.Save(path))
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	tests := []struct {
		name string
		data func() []byte
		says string
	}{
		{name: "an empty file is refused", data: func() []byte { return nil }, says: "shorter than any snapshot"},
		{name: "a file cut after its first half is refused as truncated",
			data: func() []byte { return good[:len(good)/2] }, says: "truncated"},
		{name: "a file missing its last byte is refused as truncated",
			data: func() []byte { return good[:len(good)-1] }, says: "truncated"},
		{name: "a file with one byte changed is refused by its checksum",
			data: func() []byte {
				b := append([]byte(nil), good...)
				b[len(b)/2] ^= 0x10
				return b
			}, says: "checksum mismatch"},
		{name: "a file with bytes appended is refused",
			data: func() []byte { return append(append([]byte(nil), good...), 0, 0, 0, 0) }, says: "truncated"},
		{name: "a file of another kind is refused",
			data: func() []byte { return []byte("{\"entries\": [], \"padding\": \"................\"}") }, says: "not an access-list snapshot"},
		{name: "a snapshot of a later format is refused",
			data: func() []byte {
				b := append([]byte(nil), good...)
				b[8] = 2
				return b
			}, says: "format version 2"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, "damaged-"+string(rune('a'+i)))
			require.NoError(t, os.WriteFile(p, tt.data(), 0o600))
			_, err := accesslist.Load(p)
			require.ErrorIs(t, err, accesslist.ErrCorrupt)
			require.ErrorContains(t, err, tt.says)
			require.False(t, errors.Is(err, fs.ErrNotExist))
		})
	}
}

func TestACrashDuringSaveLeavesThePreviousSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.snap")
	first := listOf(active("0042"))
	require.NoError(t, first.Save(path))

	// What a power cut during the next Save leaves: half a temporary file
	// beside the snapshot.
	second := listOf(active("0042"), active("0043"))
	second.Apply(nil, "d:2")
	leftover := filepath.Join(dir, "access.snap.tmp-12345")
	require.NoError(t, second.Save(filepath.Join(dir, "scratch")))
	whole, err := os.ReadFile(filepath.Join(dir, "scratch"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(leftover, whole[:len(whole)/3], 0o600))

	got, err := accesslist.Load(path)
	require.NoError(t, err)
	require.Equal(t, first.Entries(), got.Entries())
	require.Equal(t, "d:1", got.Cursor())

	// The next Save replaces the snapshot and clears the leftover away.
	require.NoError(t, second.Save(path))
	got, err = accesslist.Load(path)
	require.NoError(t, err)
	require.Equal(t, 2, got.Len())
	require.Equal(t, "d:2", got.Cursor())
	_, err = os.Stat(leftover)
	require.ErrorIs(t, err, fs.ErrNotExist)
	names, err := filepath.Glob(filepath.Join(dir, "access.snap*"))
	require.NoError(t, err)
	require.Equal(t, []string{path}, names)
}

func TestSavingIntoAMissingDirectoryFails(t *testing.T) {
	t.Parallel()
	err := listOf(active("1")).Save(filepath.Join(t.TempDir(), "no-such-dir", "access.snap"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestDecisionsGoOnWhileSaving(t *testing.T) {
	t.Parallel()
	entries := make([]accesslist.Entry, 20000)
	for i := range entries {
		entries[i] = active(uuid.NewString())
	}
	l := listOf(entries...)
	extra := active("extra")
	path := filepath.Join(t.TempDir(), "access.snap")
	done := make(chan error)
	go func() {
		for range 3 {
			if err := l.Save(path); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			require.NoError(t, err)
			got, err := accesslist.Load(path)
			require.NoError(t, err)
			require.Equal(t, len(entries)+1, got.Len())
			return
		default:
			require.True(t, l.DecideCard(entries[0].CardID, t0).Granted)
			l.Apply([]accesslist.Change{{Entry: extra}}, "d:2")
		}
	}
}
