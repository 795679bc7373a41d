package eventqueue_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/readers/gateway/eventqueue"
)

// recordOf returns the bytes the queue writes for ev.
func recordOf(t *testing.T, ev eventqueue.Event) []byte {
	t.Helper()
	dir := t.TempDir()
	q := open(t, dir)
	require.NoError(t, q.Append(ev))
	require.NoError(t, q.Close())
	return onlySegment(t, dir)
}

func onlySegment(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	return b
}

func TestATornLastRecordIsDroppedAndEverythingBeforeItKept(t *testing.T) {
	t.Parallel()
	rec := recordOf(t, swipe(99))
	tests := []struct {
		name string
		tail []byte
	}{
		{name: "a power cut inside the length leaves part of a header", tail: rec[:3]},
		{name: "a power cut after the header leaves no payload", tail: rec[:8]},
		{name: "a power cut inside the payload leaves half a record", tail: rec[:len(rec)/2]},
		{name: "a whole record with a flipped bit fails its checksum", tail: func() []byte {
			b := append([]byte(nil), rec...)
			b[len(b)-5] ^= 0x04
			return b
		}()},
		{name: "zeros where the file system grew the file but kept no data", tail: make([]byte, 4096)},
		{name: "a length past the end of the file", tail: []byte{0xff, 0xff, 0, 0, 1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			evs := swipes(5)
			q := open(t, dir)
			appendAll(t, q, evs)
			require.NoError(t, q.Ack(1))
			require.NoError(t, q.Close())
			intact := onlySegment(t, dir)
			files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			require.NoError(t, os.WriteFile(files[0], append(append([]byte(nil), intact...), tt.tail...), 0o600))

			q = open(t, dir)
			require.Equal(t, int64(len(tt.tail)), q.Dropped())
			require.Equal(t, 4, q.Len())
			require.Equal(t, evs[1:], peekAll(t, q))
			require.Equal(t, intact, onlySegment(t, dir), "the torn tail is cut off the file")

			// Appending goes on after the last whole record.
			more := swipe(5)
			require.NoError(t, q.Append(more))
			require.NoError(t, q.Close())
			q = open(t, dir)
			defer q.Close()
			require.Zero(t, q.Dropped())
			require.Equal(t, append(evs[1:], more), peekAll(t, q))
		})
	}
}

func TestADamagedRecordInAnOlderSegmentCostsOnlyTheRestOfThatSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, err := eventqueue.OpenWithSegmentSize(dir, 300)
	require.NoError(t, err)
	evs := swipes(12)
	appendAll(t, q, evs)
	require.NoError(t, q.Close())
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Greater(t, len(files), 2)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	perSegment := len(b) / len(recordOf(t, swipe(0)))
	require.Greater(t, perSegment, 1)
	// Damage the second record of the first segment.
	b[len(b)/perSegment+20] ^= 0xff
	require.NoError(t, os.WriteFile(files[0], b, 0o600))

	q, err = eventqueue.OpenWithSegmentSize(dir, 300)
	require.NoError(t, err)
	defer q.Close()
	got := peekAll(t, q)
	require.Equal(t, evs[0], got[0])
	require.Equal(t, evs[perSegment:], got[1:])
	require.Equal(t, len(got), q.Len())
}

func TestASegmentAcknowledgedToItsLastByteIsDeleted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	perRecord := int64(len(recordOf(t, swipe(0))))
	q, err := eventqueue.OpenWithSegmentSize(dir, 3*perRecord)
	require.NoError(t, err)
	defer q.Close()
	evs := swipes(7)
	appendAll(t, q, evs)
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Len(t, files, 3)

	require.NoError(t, q.Ack(3))
	left, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Equal(t, files[1:], left)
	require.Equal(t, evs[3:], peekAll(t, q))
	require.NoError(t, q.Ack(3))
	left, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Equal(t, files[2:], left)
	require.Equal(t, evs[6:], peekAll(t, q))
}
