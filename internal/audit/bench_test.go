package audit

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkWrite measures durable writes: serial (one fsync per line) and
// from many goroutines (lines grouped, one fsync per group). The fsyncs
// metric is fsyncs per line.
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{MaxSize: 64 << 20})
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
