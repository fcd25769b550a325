package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWrite measures durable writes: serial (one fsync per line) and
// from many goroutines (lines grouped, one fsync per group). The fsyncs
// metric is fsyncs per line.
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
		sync     time.Duration
	}{{"serial", false, 0}, {"parallel", true, 0}, {"serial/sync100ms", false, 100 * time.Millisecond}, {"parallel/sync100ms", true, 100 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{MaxSize: 64 << 20, SyncInterval: bc.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			e := event(1)
			syncs0 := l.syncs.Load()
			if bc.parallel {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := l.Write(ctx, e); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := l.Write(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(l.syncs.Load()-syncs0)/float64(b.N), "fsyncs/line")
		})
	}
}
