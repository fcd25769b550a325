package server

import (
	"net/http"
	"time"

	"tresor/internal/console"
)

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
