package e2e_test

import (
	"context"
	"crypto/sha256"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// BenchmarkClusterScaling measures RSA-2048 signs per second of one node
// pinned to one core (taskset -c 0) against two nodes of one cluster, each
// pinned to one of two cores, driven by the same client (this process, 16
// concurrent requests, split over the nodes in the second case). It
// reports both rates and their ratio (docs/cluster.md). It needs taskset
// and two cores.
//
//	go test -run '^$' -bench ClusterScaling -benchtime 1x ./internal/cli/e2e/
func BenchmarkClusterScaling(b *testing.B) {
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Skip("needs taskset")
	}
	dir := b.TempDir()
	n1, n2 := newNode(b, "n1"), newNode(b, "n2")
	n1.prefix, n2.prefix = []string{"taskset", "-c", "0"}, []string{"taskset", "-c", "1"}
	n1.extra = []string{"--bootstrap"}
	n1.start()
	env := n1.devEnv()
	tenant := env["TRESOR_TENANT_ID"]
	admin := principalCred{clientID: env["TRESOR_CLIENT_ID"], secret: env["TRESOR_CLIENT_SECRET"]}
	acct, err := n1.client(tenant, admin).Account(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var tok wire.ClusterJoinToken
	mustJSON(b, n1.cli(tenant, admin, dir, "cluster", "join-token", "-o", "json"), &tok)
	n2.extra = []string{"--join", n1.endpoint(), "--join-ca-file", n1.caFile()}
	n2.start("TRESOR_JOIN_TOKEN=" + tok.Token)

	hsm := "bench"
	cs := newCustodians(b, dir, 3)
	n1.cli(tenant, admin, dir, "create", "--hsm-name", hsm, "--resource-group", "rg", "--administrators", acct.ObjectID, "-o", "none")
	n1.cli(tenant, admin, dir, "security-domain", "download", "--hsm-name", hsm, "--sd-wrapping-keys", cs[0].cert, cs[1].cert, cs[2].cert,
		"--sd-quorum", "2", "--security-domain-file", filepath.Join(dir, "sd.json"), "-o", "none")
	for _, role := range []string{"Managed HSM Crypto Officer", "Managed HSM Crypto User"} {
		n1.cli(tenant, admin, dir, "role", "assignment", "create", "--hsm-name", hsm, "--role", role, "--assignee-object-id", acct.ObjectID, "--scope", "/", "-o", "none")
	}
	ctx := context.Background()
	size := 2048
	if _, err := n1.client(tenant, admin).CreateKey(ctx, n1.hsmURL(hsm), "rsa", wire.KeyCreateParameters{Kty: "RSA", KeySize: &size}); err != nil {
		b.Fatal(err)
	}
	eventually(b, 10*time.Second, "the key on n2", func() error {
		_, err := n2.client(tenant, admin).GetKey(ctx, n2.hsmURL(hsm), "rsa", "")
		return err
	})
	digest := sha256.Sum256([]byte("tresor"))
	rate := func(nodes ...*node) float64 {
		const conc, d = 16, 5 * time.Second
		var ops atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for i := range conc {
			n := nodes[i%len(nodes)]
			c := n.client(tenant, admin)
			url := n.hsmURL(hsm)
			wg.Add(1)
			go func(c *client.Client) {
				defer wg.Done()
				for time.Now().Before(stop) {
					if _, err := c.Sign(ctx, url, "rsa", "", "RS256", digest[:]); err != nil {
						b.Error(err)
						return
					}
					ops.Add(1)
				}
			}(c)
		}
		wg.Wait()
		return float64(ops.Load()) / d.Seconds()
	}
	rate(n1, n2) // warm up: connections, tokens, opened keys on both nodes
	b.ResetTimer()
	var one, two float64
	for range b.N {
		one = rate(n1)
		two = rate(n1, n2)
	}
	b.ReportMetric(one, "signs/s-1node")
	b.ReportMetric(two, "signs/s-2nodes")
	b.ReportMetric(two/one, "ratio")
	b.Logf("RSA-2048 RS256 signs/s: one node on one core %.0f, two nodes on two cores %.0f: %.2fx", one, two, two/one)
}
