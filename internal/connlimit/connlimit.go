// Package connlimit implements a [net.Listener] that caps how many
// connections are open at once, in all and per client address, so that
// clients holding connections open (slow request bodies, idle TLS) cannot
// use up the process's file descriptors.
//
// A connection beyond a cap is closed as soon as it is accepted, before any
// byte is read: the client sees the connection reset at once instead of
// waiting in a queue. The last slots of the global cap (its reserve) go
// only to client addresses that hold no connection yet, so that a few
// addresses that reach the global cap do not lock everyone else out; a
// health check from a new address still gets in.
//
// Client addresses are IPv4 addresses and IPv6 /64 prefixes (one host
// usually owns a whole /64). Behind a reverse proxy or a large NAT many
// clients share one address: raise the per-client cap there, or turn it
// off.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
)

// Config sets the caps.
type Config struct {
	// Max is the number of connections open at once (at least 1).
	Max int
	// PerClient is the number of connections one client address may hold
	// at once; 0 means no per-client cap.
	PerClient int
	// Reserve is how many of the Max slots only a client address that holds
	// no connection may take (at most Max-1).
	Reserve int
	// OnRefuse, if set, is called (without locks held) with the client
	// address of each refused connection and why: "max" or "per-client".
	OnRefuse func(client netip.Prefix, why string)
}

// DefaultReserve is the reserve [Listen] callers use: a sixteenth of max.
func DefaultReserve(max int) int { return max / 16 }

// Listener wraps a listener with the caps of a [Config]. It is safe for
// concurrent use; Accept may be called from one goroutine at a time.
type Listener struct {
	net.Listener
	cfg Config

	mu     sync.Mutex
	open   int
	client map[netip.Prefix]int
}

// New wraps ln. It panics if cfg is not valid (a programming error: the
// server validates its configuration first).
func New(ln net.Listener, cfg Config) *Listener {
	if cfg.Max < 1 || cfg.PerClient < 0 || cfg.Reserve < 0 || cfg.Reserve >= cfg.Max {
		panic("connlimit: invalid Config")
	}
	return &Listener{Listener: ln, cfg: cfg, client: map[netip.Prefix]int{}}
}

// Accept returns the next connection within the caps; connections beyond
// them are closed and skipped.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientOf(c.RemoteAddr())
		if why := l.take(key); why != "" {
			// Report before closing: whoever sees the close may count
			// the refusals at once.
			if l.cfg.OnRefuse != nil {
				l.cfg.OnRefuse(key, why)
			}
			c.Close()
			continue
		}
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

func (l *Listener) take(key netip.Prefix) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.client[key]
	switch {
	case l.open >= l.cfg.Max:
		return "max"
	case l.cfg.PerClient > 0 && held >= l.cfg.PerClient:
		return "per-client"
	case held > 0 && l.open >= l.cfg.Max-l.cfg.Reserve:
		return "max"
	}
	l.open++
	l.client[key] = held + 1
	return ""
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.client[key]--; l.client[key] <= 0 {
		delete(l.client, key)
	}
}

// Open returns how many accepted connections are open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Clients returns how many client addresses hold a connection.
func (l *Listener) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.client)
}

// clientOf is the client address of a remote address (see [Client]).
func clientOf(a net.Addr) netip.Prefix {
	if v, ok := a.(*net.TCPAddr); ok {
		return clientPrefix(v.AddrPort().Addr())
	}
	return Client(a.String())
}

// Client is the client address of a remote address "ip:port" (an
// http.Request's RemoteAddr): the IPv4 address (also when mapped into
// IPv6), or the /64 of an IPv6 address. Anything else (a unix socket) is
// the zero Prefix, one key for all.
func Client(remote string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Prefix{}
	}
	return clientPrefix(ap.Addr())
}

func clientPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// conn gives its slot back once, on the first Close.
type conn struct {
	net.Conn
	l    *Listener
	key  netip.Prefix
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
