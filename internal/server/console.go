package server

import (
	"net/http"
	"time"

	"tresor/internal/console"
)

// withConsole returns the region endpoint's handler: the web console at
// /console (a client of s.api, in process) and s.api for everything else.
func (s *Server) withConsole(cfg Config) (http.Handler, error) {
	issuers, err := consoleIssuers(cfg.Identity.TrustedIssuers)
	if err != nil {
		return nil, err
	}
	con, err := console.New(console.Config{API: s.api, Endpoint: s.Endpoint, DNSSuffix: cfg.DNSSuffix, Issuers: issuers, Logger: s.log, Now: cfg.Clock})
	if err != nil {
		return nil, err
	}
	return console.Wrap(s.api, con), nil
}

// consoleIssuers are the trusted issuers that the web console signs in
// through: those with a consoleClientId.
func consoleIssuers(cfgs []TrustedIssuerConfig) ([]console.Issuer, error) {
	var out []console.Issuer
	for _, c := range cfgs {
		if c.ConsoleClientID == "" {
			continue
		}
		hc := &http.Client{Timeout: 10 * time.Second}
		if c.CAFile != "" {
			var err error
			if hc, err = issuerClient(c.CAFile); err != nil {
				return nil, err
			}
		}
		out = append(out, console.Issuer{Issuer: c.Issuer, DiscoveryURL: c.DiscoveryURL, ClientID: c.ConsoleClientID,
			ARMAudience: c.ARMAudiences[0], HSMAudience: c.HSMAudiences[0], HTTPClient: hc})
	}
	return out, nil
}
