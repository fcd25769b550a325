package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"tresor/internal/identity"
)

// issuerRetryInterval is how often the keys of trusted issuers that have
// none yet are fetched again (the identity package allows one fetch a
// minute per issuer).
const issuerRetryInterval = time.Minute

// trustedIssuers turns the configured issuers into the trusted issuers of
// each plane's validator: an issuer is trusted on the region endpoint with
// its armAudiences and on the HSM endpoints with its hsmAudiences, and not
// on a plane it lists no audience for. An issuer's caFile is read here; an
// unreadable file or one without certificates refuses the start whatever
// --strict-issuers says, as any other config error.
func trustedIssuers(cfgs []TrustedIssuerConfig, log *slog.Logger) (arm, hsm []identity.TrustedIssuer, err error) {
	for i, c := range cfgs {
		t := identity.TrustedIssuer{Issuer: c.Issuer, DiscoveryURL: c.DiscoveryURL, JWKSFile: c.JWKSFile, PrincipalClaim: c.PrincipalClaim}
		if c.CAFile != "" {
			if t.HTTPClient, err = issuerClient(c.CAFile); err != nil {
				return nil, nil, fmt.Errorf("config: identity.trustedIssuers[%d].caFile: %w", i, err)
			}
		}
		if len(c.ARMAudiences) > 0 {
			a := t
			a.Audiences = c.ARMAudiences
			arm = append(arm, a)
		}
		if len(c.HSMAudiences) > 0 {
			h := t
			h.Audiences = c.HSMAudiences
			hsm = append(hsm, h)
		}
		for _, a := range c.ARMAudiences {
			if slices.ContainsFunc(c.HSMAudiences, func(h string) bool { return trimSlash(h) == trimSlash(a) }) {
				log.Warn("trusted issuer: an audience is listed for both planes, so its tokens are good on the region endpoint and on the HSM endpoints",
					"issuer", c.Issuer, "audience", a)
			}
		}
	}
	return arm, hsm, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// issuerClient is an HTTP client that trusts only the CA certificates in
// caFile, for an issuer on a private CA.
func issuerClient(caFile string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, nil
}

// validators are the token validators of both planes.
type validators struct {
	mgmt *identity.Validator // tokens for the region endpoint
	hsm  *identity.Validator // tokens for the HSM endpoints
}

// newValidators builds the validators of both planes for the region's
// own tokens and those of the trusted issuers cfgs.
func (s *Server) newValidators(cfgs []TrustedIssuerConfig) (*validators, error) {
	armTrusted, hsmTrusted, err := trustedIssuers(cfgs, s.log)
	if err != nil {
		return nil, err
	}
	// One validator per plane, each with that plane's audiences; they share
	// the trusted issuers' key caches, so an issuer is fetched (and a
	// failure logged) once.
	var v validators
	v.mgmt, err = identity.NewValidator(identity.ValidatorConfig{Local: s.issuer, LocalAudiences: s.mgmtAuds, Trusted: armTrusted, Logger: s.log})
	if err != nil {
		return nil, err
	}
	v.hsm, err = identity.NewValidator(identity.ValidatorConfig{Local: s.issuer, LocalAudiences: s.hsmAuds, Trusted: hsmTrusted, Logger: s.log, ShareKeys: v.mgmt})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// fetchKeys fetches the keys of the trusted issuers that have none yet.
func (v *validators) fetchKeys(ctx context.Context) error {
	return errors.Join(v.mgmt.FetchKeys(ctx), v.hsm.FetchKeys(ctx))
}

// fetchIssuerKeys fetches the keys of the trusted issuers that have none
// yet, then again every issuerRetryInterval until every issuer has
// answered, and does so again for the validators of each reload, until ctx
// ends. Failures are logged by the validators (once per attempt, with the
// URL and the cause); tokens of an issuer without keys are refused
// meanwhile.
func (s *Server) fetchIssuerKeys(ctx context.Context) {
	t := time.NewTicker(issuerRetryInterval)
	defer t.Stop()
	for {
		var retry <-chan time.Time
		if s.validators.Load().fetchKeys(ctx) != nil {
			retry = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-retry:
		case <-s.reloaded:
		}
	}
}
