package accesslist_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/readers/gateway/accesslist"
)

const million = 1_000_000

var (
	millionOnce    sync.Once
	millionEntries []accesslist.Entry
	millionList    *accesslist.List
)

// aMillionCards returns a list of 1,000,000 records with decimal card IDs
// 10000000…10999999; one in ten has a validity window, one in fifty is
// suspended.
func aMillionCards(b *testing.B) ([]accesslist.Entry, *accesslist.List) {
	b.Helper()
	millionOnce.Do(func() {
		template := uuid.New()
		from, until := t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0)
		millionEntries = make([]accesslist.Entry, million)
		for i := range millionEntries {
			e := accesslist.Entry{RecordID: uuid.New(), TemplateID: template, CardID: strconv.Itoa(10_000_000 + i),
				Status: accesslist.StatusActive}
			if i%10 == 0 {
				e.ValidFrom, e.ExpiresAt = &from, &until
			}
			if i%50 == 0 {
				e.Status = accesslist.StatusSuspended
			}
			millionEntries[i] = e
		}
		millionList = accesslist.New()
		millionList.ReplaceAll(millionEntries, "d:1")
	})
	return millionEntries, millionList
}

// presented are the cards shown at doors in the benchmarks: spread over
// the list, one in eight unknown.
func presented() []string {
	cards := make([]string, 1<<16)
	for i := range cards {
		n := (i * 7919) % million
		if i%8 == 0 {
			n += 2 * million
		}
		cards[i] = strconv.Itoa(10_000_000 + n)
	}
	return cards
}

// BenchmarkDecideCard1M decides cards against a list of a million; it
// also reports the 99th percentile of single decisions.
func BenchmarkDecideCard1M(b *testing.B) {
	_, l := aMillionCards(b)
	cards := presented()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = l.DecideCard(cards[i&(len(cards)-1)], t0)
	}
	b.StopTimer()
	lat := make([]time.Duration, 200_000)
	for i := range lat {
		start := time.Now()
		_ = l.DecideCard(cards[i&(len(cards)-1)], t0)
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
}

// BenchmarkDecideCard1MParallel decides from every CPU at once, as many
// doors do.
func BenchmarkDecideCard1MParallel(b *testing.B) {
	_, l := aMillionCards(b)
	cards := presented()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			_ = l.DecideCard(cards[i&(len(cards)-1)], t0)
		}
	})
}

func BenchmarkReplaceAll1M(b *testing.B) {
	entries, _ := aMillionCards(b)
	l := accesslist.New()
	for b.Loop() {
		l.ReplaceAll(entries, "d:1")
	}
}

func BenchmarkSave1M(b *testing.B) {
	_, l := aMillionCards(b)
	path := filepath.Join(b.TempDir(), "access.snap")
	for b.Loop() {
		if err := l.Save(path); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
	}
}

func BenchmarkLoad1M(b *testing.B) {
	_, l := aMillionCards(b)
	path := filepath.Join(b.TempDir(), "access.snap")
	if err := l.Save(path); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := accesslist.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if got.Len() != million {
			b.Fatal(got.Len())
		}
	}
}
