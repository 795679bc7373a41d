package eventqueue_test

import (
	"testing"

	"github.com/google/uuid"
)

// BenchmarkAppend appends from one door at a time: one fsync per event.
func BenchmarkAppend(b *testing.B) {
	q := open(b, b.TempDir())
	defer q.Close()
	ev := swipe(1)
	for b.Loop() {
		ev.ID = uuid.New()
		if err := q.Append(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendConcurrent appends from 32 doors per CPU at once: they
// share fsyncs.
func BenchmarkAppendConcurrent(b *testing.B) {
	q := open(b, b.TempDir())
	defer q.Close()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		ev := swipe(1)
		for pb.Next() {
			ev.ID = uuid.New()
			if err := q.Append(ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
