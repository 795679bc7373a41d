package em4100_test

import (
	"testing"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/stretchr/testify/require"
)

// clock is a settable clock for the decoder.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)} }

// newDecoder returns a decoder for format on clk.
func newDecoder(t testing.TB, format cardid.Format, clk *clock) *em4100.Decoder {
	t.Helper()
	d, err := em4100.NewDecoder(em4100.Config{Format: format, Now: clk.Now})
	require.NoError(t, err)
	return d
}

// feedBytewise feeds p one byte at a time, as a slow USB adapter may
// deliver it.
func feedBytewise(d *em4100.Decoder, p []byte) []em4100.Read {
	var reads []em4100.Read
	for i := range p {
		reads = append(reads, d.Feed(p[i:i+1])...)
	}
	return reads
}

// cardIDs lists the card IDs of reads.
func cardIDs(reads []em4100.Read) []string {
	ids := []string{}
	for _, r := range reads {
		ids = append(ids, r.CardID)
	}
	return ids
}
