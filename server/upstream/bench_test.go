package upstream

import (
	"context"
	"testing"

	"github.com/wedgeproxy/wedge/server/config"
)

func BenchmarkAcquireRelease(b *testing.B) {
	for _, bc := range []struct {
		name    string
		balance string
		servers int
	}{
		{"round_robin/1", "round_robin", 1},
		{"round_robin/4", "round_robin", 4},
		{"least_conn/4", "least_conn", 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var addrs []string
			for range bc.servers {
				addrs = append(addrs, newBackend(b, "tcp").addr)
			}
			p := mustPool(b, &config.Upstream{Balance: bc.balance, Servers: servers(addrs...)}, Options{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				c, err := p.Acquire(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.Release(true)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		be := newBackend(b, "tcp")
		p := mustPool(b, &config.Upstream{Servers: servers(be.addr)}, Options{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				c, err := p.Acquire(ctx, nil)
				if err != nil {
					b.Error(err)
					return
				}
				c.Release(true)
			}
		})
	})
}
