package raft

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Limits of the cluster link.
const (
	handshakeTimeout = 5 * time.Second  // TLS handshake and tag byte of an accepted connection
	rpcIdleTimeout   = 60 * time.Second // between two requests of one RPC connection
	rpcWriteTimeout  = 10 * time.Second
	maxPending       = 64  // accepted connections in handshake at once
	maxRPCConns      = 128 // RPC connections open at once
)

// link is the cluster link: one TLS listener for raft's transport
// (hraft.StreamLayer) and for our RPCs.
type link struct {
	ln        net.Listener // TCP; TLS is done per connection
	advertise string
	server    *tls.Config
	client    *tls.Config
	serve     func(kind byte, payload []byte) []byte // answers an RPC request
	dialer    func(addr string) string               // tests: where a dial to addr goes
	log       *slog.Logger

	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	pending   chan struct{}
	rpcs      chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{} // every open connection, closed by Close
	wg    sync.WaitGroup
}

var _ hraft.StreamLayer = (*link)(nil)

// tlsConfigs derives the server and client configurations of the link from
// the caller's: mutual TLS 1.3 against the cluster CA.
func tlsConfigs(c *tls.Config) (server, client *tls.Config, err error) {
	switch {
	case c == nil:
		return nil, nil, errors.New("raft: Config.TLS is required")
	case len(c.Certificates) == 0 && c.GetCertificate == nil:
		return nil, nil, errors.New("raft: Config.TLS has no certificate")
	case c.RootCAs == nil:
		return nil, nil, errors.New("raft: Config.TLS.RootCAs (the cluster CA) is required")
	case c.ClientCAs == nil:
		return nil, nil, errors.New("raft: Config.TLS.ClientCAs (the cluster CA) is required")
	}
	server = c.Clone()
	server.ClientAuth = tls.RequireAndVerifyClientCert
	server.MinVersion = tls.VersionTLS13
	client = c.Clone()
	client.MinVersion = tls.VersionTLS13
	if client.GetClientCertificate == nil && len(client.Certificates) == 0 && c.GetCertificate != nil {
		client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.GetCertificate(&tls.ClientHelloInfo{})
		}
	}
	return server, client, nil
}

func listen(bind, advertise string, server, client *tls.Config, log *slog.Logger) (*link, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raft: listen: %w", err)
	}
	if advertise == "" {
		host, _, _ := net.SplitHostPort(bind)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("raft: BindAddr %q has no host others can dial: set AdvertiseAddr", bind)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		advertise = net.JoinHostPort(host, port)
	}
	if _, _, err := net.SplitHostPort(advertise); err != nil {
		ln.Close()
		return nil, fmt.Errorf("raft: AdvertiseAddr: %w", err)
	}
	return &link{
		ln: ln, advertise: advertise, server: server, client: client, log: log,
		raftConns: make(chan net.Conn),
		closed:    make(chan struct{}),
		pending:   make(chan struct{}, maxPending),
		rpcs:      make(chan struct{}, maxRPCConns),
		conns:     map[net.Conn]struct{}{},
	}, nil
}

// run accepts connections until Close.
func (l *link) run() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.log.Error("raft: cluster link accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case l.pending <- struct{}{}:
		default:
			c.Close() // too many handshakes at once
			continue
		}
		l.wg.Add(1)
		go l.accept(c)
	}
}

// accept does the handshake and reads the tag of a connection, then hands
// it to raft or serves its RPCs.
func (l *link) accept(raw net.Conn) {
	defer l.wg.Done()
	c := tls.Server(raw, l.server)
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	var tag [1]byte
	err := c.Handshake()
	if err == nil {
		_, err = io.ReadFull(c, tag[:])
	}
	<-l.pending
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch tag[0] {
	case tagRaft:
		tc, err := l.tracked(c)
		if err != nil {
			return
		}
		select {
		case l.raftConns <- tc:
		case <-l.closed:
			tc.Close()
		}
	case tagForward, tagStatus:
		select {
		case l.rpcs <- struct{}{}:
		default:
			c.Close() // too many RPC connections
			return
		}
		defer func() { <-l.rpcs }()
		tc, err := l.tracked(c)
		if err != nil {
			return
		}
		defer tc.Close()
		l.serveRPCs(tc, tag[0])
	default:
		c.Close()
	}
}

// track adds or removes an RPC connection; it refuses to add once closed.
func (l *link) track(c net.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.conns, c)
		return true
	}
	select {
	case <-l.closed:
		return false
	default:
	}
	l.conns[c] = struct{}{}
	return true
}

// serveRPCs answers the requests of one connection; first is the kind of
// the first request (its tag, already read).
func (l *link) serveRPCs(c net.Conn, first byte) {
	r := bufio.NewReader(c)
	kind := first
	for i := 0; ; i++ {
		_ = c.SetReadDeadline(time.Now().Add(rpcIdleTimeout))
		var payload []byte
		var err error
		if i == 0 {
			payload, err = readFrame(r, maxRequest)
		} else {
			kind, payload, err = readRequest(r)
		}
		if err != nil {
			return // EOF, idle, or a malformed frame: drop the connection
		}
		if kind != tagForward && kind != tagStatus {
			return
		}
		reply := l.serve(kind, payload)
		_ = c.SetWriteDeadline(time.Now().Add(rpcWriteTimeout))
		if _, err := c.Write(appendFrame(nil, reply)); err != nil {
			return
		}
	}
}

// Accept implements net.Listener for raft's transport: the connections
// tagged tagRaft.
func (l *link) Accept() (net.Conn, error) {
	select {
	case c := <-l.raftConns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close closes the listener and every connection of the link.
func (l *link) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.closed)
		conns := make([]net.Conn, 0, len(l.conns))
		for c := range l.conns {
			conns = append(conns, c)
		}
		l.mu.Unlock()
		err = l.ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return err
}

// wait waits for the link's goroutines after Close.
func (l *link) wait() { l.wg.Wait() }

// Addr returns the advertised address (raft's transport tells it to peers).
func (l *link) Addr() net.Addr { return advertisedAddr(l.advertise) }

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// Dial implements hraft.StreamLayer: a TLS connection tagged tagRaft.
func (l *link) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dial(string(address), tagRaft, time.Now().Add(timeout))
}

// dial opens a TLS connection to addr (verifying the peer's certificate
// against the cluster CA for the address's host) and writes tag.
func (l *link) dial(addr string, tag byte, deadline time.Time) (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg := l.client
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	if l.dialer != nil {
		addr = l.dialer(addr)
	}
	d := &net.Dialer{Deadline: deadline}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(deadline)
	if err := c.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Write([]byte{tag}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return l.tracked(c)
}

// call sends one request on a new connection and reads its reply, within
// ctx. sent tells whether the request may have reached the peer (an error
// after that leaves its outcome unknown).
func (l *link) call(ctx context.Context, addr string, kind byte, payload []byte) (reply []byte, sent bool, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(applyTimeout)
	}
	c, err := l.dial(addr, kind, deadline)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(appendFrame(nil, payload)); err != nil {
		return nil, true, err
	}
	reply, err = readFrame(bufio.NewReader(c), maxReply)
	return reply, true, err
}

// trackedConn is a connection of the link, closed by its Close.
type trackedConn struct {
	net.Conn
	l    *link
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.l.track(c, false) })
	return c.Conn.Close()
}

// tracked wraps c so that Close closes it; it refuses (and closes c) once
// the link is closed.
func (l *link) tracked(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, l: l}
	if !l.track(tc, true) {
		c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}
