package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// slowConn is an attacker's connection: TLS from its own loopback address,
// then a request whose body trickles in.
type slowConn struct {
	conn *tls.Conn
	stop chan struct{}
}

// dialSlow opens a TLS connection from local (an address of 127.0.0.0/8)
// and completes the handshake; a refused connection fails it.
func dialSlow(s *servertest.Server, pool *x509.CertPool, local string) (*slowConn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	raw, err := d.Dial("tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return &slowConn{conn: c, stop: make(chan struct{})}, nil
}

// trickle sends the token request's headers with a Content-Length, then
// one body byte every 200 ms until the connection fails or stop closes.
func (sc *slowConn) trickle(path string) {
	hdr := "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\n"
	if _, err := io.WriteString(sc.conn, hdr); err != nil {
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-sc.stop:
			return
		case <-t.C:
			if _, err := sc.conn.Write([]byte("g")); err != nil {
				return
			}
		}
	}
}

// outcome waits (at most until deadline) for the server to end the slow
// request: its status if it answered, 0 if it closed the connection.
func (sc *slowConn) outcome(deadline time.Time) (int, []byte, error) {
	sc.conn.SetReadDeadline(deadline)
	resp, err := http.ReadResponse(bufio.NewReader(sc.conn), nil)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return 0, nil, fmt.Errorf("the server did not cut the slow request: %w", err)
		}
		return 0, nil, nil // closed
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, nil
}

// TestSlowClientsCannotExhaustConnections: an attacker without a token who
// opens many connections and trickles request bodies gets its connections
// beyond the caps closed at accept and its slow requests cut after the body
// timeout, while a health check and an authenticated request of another
// client keep answering; afterwards no connection is left counted.
func TestSlowClientsCannotExhaustConnections(t *testing.T) {
	const maxConns, perClient = 32, 20 // the last 32/16 = 2 slots are the reserve
	s := servertest.Start(t, func(c *server.Config) {
		c.MaxConnections = maxConns
		c.MaxConnectionsPerClient = perClient
		c.RequestBodyTimeout = server.Duration{Duration: time.Second}
		c.ResponseTimeout = server.Duration{Duration: 5 * time.Second}
	})
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)

	// One fresh client on 127.0.0.1, one connection kept alive.
	cl := s.HTTPClient(t)
	healthy := func(when string) {
		t.Helper()
		resp, err := cl.Get(s.Endpoint + "/healthz")
		if err != nil {
			t.Fatalf("%s: health check: %v", when, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: health check: %d %s", when, resp.StatusCode, body)
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "scope": {s.Endpoint + "/.default"}}
		resp, err = cl.PostForm(s.Endpoint+"/"+s.TenantID+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatalf("%s: token: %v", when, err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("%s: token: %d %v", when, resp.StatusCode, err)
		}
		req, _ := http.NewRequest("GET", s.Endpoint+"/tresor/account", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = cl.Do(req)
		if err != nil {
			t.Fatalf("%s: account: %v", when, err)
		}
		var acc wire.Account
		err = json.NewDecoder(resp.Body).Decode(&acc)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil || acc.ObjectID != s.ObjectID {
			t.Fatalf("%s: account: %d %v %+v", when, resp.StatusCode, err, acc)
		}
	}
	healthy("before the attack")

	// Phase 1: connect. 127.0.0.2 gets perClient connections, 127.0.0.3
	// the rest of the slots outside the reserve (the fresh client holds
	// one); every further connection of theirs is closed at accept.
	var held []*slowConn
	attack := func(local string, n, wantHeld int) {
		t.Helper()
		got := 0
		for range n {
			sc, err := dialSlow(s, pool, local)
			if err != nil {
				continue
			}
			got++
			held = append(held, sc)
		}
		if got != wantHeld {
			t.Errorf("%s: %d of %d connections accepted, want %d", local, got, n, wantHeld)
		}
	}
	attack("127.0.0.2", perClient+5, perClient)
	attack("127.0.0.3", 15, maxConns-maxConns/16-perClient-1)
	defer func() {
		for _, sc := range held {
			close(sc.stop)
			sc.conn.Close()
		}
	}()
	healthy("with every slot but the reserve held")

	// Phase 2: every held connection sends a request whose body trickles.
	var wg sync.WaitGroup
	for _, sc := range held {
		wg.Go(func() { sc.trickle("/" + s.TenantID + "/oauth2/v2.0/token") })
	}
	healthy("while the bodies trickle")
	deadline := time.Now().Add(10 * time.Second)
	for i, sc := range held {
		code, body, err := sc.outcome(deadline)
		switch {
		case err != nil:
			t.Fatalf("slow connection %d: %v", i, err)
		case code != 0 && code != http.StatusRequestTimeout:
			t.Fatalf("slow connection %d: status %d %s, want 408 or a closed connection", i, code, body)
		case code != 0 && !strings.Contains(string(body), `"error"`):
			t.Fatalf("slow connection %d: 408 without an error body: %s", i, body)
		}
	}
	for _, sc := range held {
		close(sc.stop)
		sc.conn.Close()
	}
	held = nil
	wg.Wait()
	healthy("after the attack")

	// No connection stays counted once the clients are gone.
	cl.Transport.(*http.Transport).CloseIdleConnections()
	for end := time.Now().Add(10 * time.Second); s.Connections() != 0; {
		if time.Now().After(end) {
			t.Fatalf("%d connections still counted after every client closed", s.Connections())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
