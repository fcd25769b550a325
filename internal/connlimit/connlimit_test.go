package connlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"tresor/internal/pkgdoc"
)

func TestPackageDoc(t *testing.T) { pkgdoc.Check(t, ".") }

// TestCaps opens connections from several loopback addresses in order and
// checks which ones the listener keeps, then that closing gives the slots
// back.
func TestCaps(t *testing.T) {
	tests := map[string]struct {
		cfg   Config
		dials []string // local address of each dial, in order
		want  []bool   // kept?
	}{
		"per-client cap": {
			cfg:   Config{Max: 10, PerClient: 2},
			dials: []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"},
			want:  []bool{true, true, false, true},
		},
		"global cap": {
			cfg:   Config{Max: 3},
			dials: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"},
			want:  []bool{true, true, true, false},
		},
		"the reserve is for new addresses": {
			cfg:   Config{Max: 4, PerClient: 3, Reserve: 2},
			dials: []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.5"},
			want:  []bool{true, true, false, true, false, true, false},
		},
		"no per-client cap": {
			cfg:   Config{Max: 3, PerClient: 0},
			dials: []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2"},
			want:  []bool{true, true, true, false},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var refused []string
			tc.cfg.OnRefuse = func(p netip.Prefix, why string) {
				mu.Lock()
				refused = append(refused, p.String()+" "+why)
				mu.Unlock()
			}
			ln := New(inner, tc.cfg)
			defer ln.Close()
			accepted := make(chan net.Conn, len(tc.dials))
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}
			}()
			var server []net.Conn
			for i, local := range tc.dials {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", inner.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if tc.want[i] {
					sc := <-accepted
					server = append(server, sc)
					if _, err := sc.Write([]byte{1}); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
						t.Fatalf("dial %d from %s: kept connection does not work: %v", i, local, err)
					}
				} else {
					// A refused connection is closed at once: the read ends
					// with EOF or a reset, not the deadline.
					_, err := c.Read(make([]byte, 1))
					if ne, ok := errors.AsType[net.Error](err); err == nil || ok && ne.Timeout() {
						t.Fatalf("dial %d from %s: not closed: %v", i, local, err)
					}
				}
			}
			if got := ln.Open(); got != len(server) {
				t.Fatalf("Open() = %d, want %d", got, len(server))
			}
			mu.Lock()
			if n := len(tc.dials) - len(server); len(refused) != n {
				t.Errorf("OnRefuse called for %v, want %d", refused, n)
			}
			mu.Unlock()
			for _, c := range server {
				c.Close()
				c.Close() // a second Close gives nothing back twice
			}
			if ln.Open() != 0 || ln.Clients() != 0 {
				t.Fatalf("after closing: Open() = %d, Clients() = %d", ln.Open(), ln.Clients())
			}
		})
	}
}

func TestClientOf(t *testing.T) {
	tests := map[string]struct {
		addr net.Addr
		want string
	}{
		"ipv4":        {&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		"mapped ipv4": {&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		"ipv6 by /64": {&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		"not ip":      {&net.UnixAddr{Name: "/run/x", Net: "unix"}, "invalid Prefix"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := clientOf(tc.addr).String(); got != tc.want {
				t.Fatalf("clientOf(%v) = %s, want %s", tc.addr, got, tc.want)
			}
		})
	}
}
