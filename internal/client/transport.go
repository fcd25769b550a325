package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"
)

// newHTTPClient builds the client's HTTP client: it trusts caPEM only (or
// the system roots if caPEM is nil) and dials the region endpoint for every
// host under the region's DNS suffix, keeping that host as Host and SNI.
func (c *Client) newHTTPClient(caPEM []byte) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("client: Config.CAFile/CAPEM: no PEM certificate found")
		}
		tlsConf.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, c.dialAddr(addr))
	}
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		if c.isHSMHost(req.URL.Hostname()) {
			return nil, nil // the proxy could not resolve it either
		}
		return http.ProxyFromEnvironment(req)
	}
	return &http.Client{Transport: tr}, nil
}

// isHSMHost reports whether host is under the region's DNS suffix (once the
// region info is known).
func (c *Client) isHSMHost(host string) bool {
	r := c.region.Load()
	return r != nil && isUnder(host, r.DNSSuffix)
}

// dialAddr maps addr (host:port) to the address to dial: the region
// endpoint's for HSM hosts, addr itself otherwise. TLS still uses the HSM
// host as server name, since net/http takes it from the request URL.
func (c *Client) dialAddr(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !c.isHSMHost(host) {
		return addr
	}
	return net.JoinHostPort(c.base.Hostname(), portOf(c.base))
}

// portOf returns u's port, defaulting to 443.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return "443"
}
