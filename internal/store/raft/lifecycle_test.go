package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/store"
)

// TestOpenRefuses: Open checks its configuration, and refuses to start a
// node without raft state over a Bolt that has applied commands.
func TestOpenRefuses(t *testing.T) {
	good := func(t *testing.T) Config {
		return Config{NodeID: "n", Dir: t.TempDir(), BindAddr: "127.0.0.1:0", TLS: nodeTLS(t, "n")}
	}
	tests := map[string]struct {
		edit func(*Config)
		want string
	}{
		"no id":           {func(c *Config) { c.NodeID = "" }, "NodeID"},
		"no dir":          {func(c *Config) { c.Dir = "" }, "Dir"},
		"no bind":         {func(c *Config) { c.BindAddr = "" }, "BindAddr"},
		"no TLS":          {func(c *Config) { c.TLS = nil }, "TLS"},
		"no certificate":  {func(c *Config) { c.TLS.Certificates = nil }, "certificate"},
		"no RootCAs":      {func(c *Config) { c.TLS.RootCAs = nil }, "RootCAs"},
		"no ClientCAs":    {func(c *Config) { c.TLS.ClientCAs = nil }, "ClientCAs"},
		"unspecified":     {func(c *Config) { c.BindAddr = "0.0.0.0:0" }, "AdvertiseAddr"},
		"negative lease":  {func(c *Config) { c.Lease = -time.Second }, "negative"},
		"bad raft timing": {func(c *Config) { c.HeartbeatTimeout, c.ElectionTimeout = time.Second, 100*time.Millisecond }, "Election"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := store.OpenBolt(filepath.Join(t.TempDir(), "bolt.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cfg := good(t)
			tc.edit(&cfg)
			s, err := Open(b, cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	t.Run("store with state", func(t *testing.T) {
		b, err := store.OpenBolt(filepath.Join(t.TempDir(), "bolt.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Apply(context.Background(), store.PutRegionValue{Key: "k", Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		cfg := good(t)
		cfg.Bootstrap = true
		if s, err := Open(b, cfg); err == nil || !strings.Contains(err.Error(), "empty store") {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open over a Bolt with state: %v", err)
		}
	})
}

// TestLinkRefusesStrangers: the cluster link speaks only mutual TLS 1.3
// with certificates of the cluster CA.
func TestLinkRefusesStrangers(t *testing.T) {
	c := newCluster(t, 1, fast)
	addr := c.nodes[0].addr
	own := nodeTLS(t, "client")
	tests := map[string]struct {
		cfg *tls.Config
		ok  bool
	}{
		"cluster certificate": {&tls.Config{Certificates: own.Certificates, RootCAs: own.RootCAs, ServerName: "127.0.0.1"}, true},
		"no certificate":      {&tls.Config{RootCAs: own.RootCAs, ServerName: "127.0.0.1"}, false},
		"TLS 1.2":             {&tls.Config{Certificates: own.Certificates, RootCAs: own.RootCAs, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}, false},
		"foreign certificate": {&tls.Config{Certificates: foreignTLS(t).Certificates, RootCAs: own.RootCAs, ServerName: "127.0.0.1"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, tc.cfg)
			if err == nil {
				defer conn.Close()
				// TLS 1.3 reports a refused client certificate on the
				// first read.
				_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
				_, err = conn.Write(request(tagStatus, nil))
				if err == nil {
					_, err = readFrame(conn, maxReply)
				}
			}
			if (err == nil) != tc.ok {
				t.Fatalf("status request: %v, want success %v", err, tc.ok)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("the link answered plain text")
		}
	})
	if err := c.nodes[0].s.Healthy(); err != nil {
		t.Fatalf("after the strangers: %v", err)
	}
}

// TestLeadership: LeaderChanges tells each node whether it leads,
// TransferLeadership moves the lead, and Close is safe twice and ends the
// channels.
func TestLeadership(t *testing.T) {
	c := newCluster(t, 3, fast)
	l := c.leader()
	chans := map[*node]<-chan bool{}
	for _, nd := range c.nodes {
		chans[nd] = nd.s.LeaderChanges()
	}
	expect := func(nd *node, want bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-chans[nd]:
				if got == want {
					return
				}
			case <-deadline:
				t.Fatalf("%s: LeaderChanges did not say %v", nd.id, want)
			}
		}
	}
	expect(l, true)
	to := c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.s.TransferLeadership(ctx, to.id); err != nil {
		t.Fatal(err)
	}
	expect(l, false)
	expect(to, true)
	if id, _ := l.s.Leader(); id != to.id {
		t.Errorf("leader after the transfer: %q, want %s", id, to.id)
	}
	if err := to.s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := to.s.TransferLeadership(ctx, "nobody"); err == nil {
		t.Error("transfer to an unknown server succeeded")
	}

	if err := to.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := to.s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range chans[to] {
	}
	if _, ok := <-to.s.LeaderChanges(); ok {
		t.Error("LeaderChanges after Close delivers")
	}
	if err := to.s.Apply(ctx, store.PutRegionValue{Key: "k", Value: []byte("v")}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
	if err := to.s.WaitLeader(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("WaitLeader after Close: %v", err)
	}
	// The others elect a new leader and go on.
	mustPut(t, c.follower().s, "after", "1")
}
