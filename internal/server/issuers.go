package server

import (
	"log/slog"
	"slices"

	"tresor/internal/identity"
)

// trustedIssuers turns the configured issuers into the trusted issuers of
// each plane's validator: an issuer is trusted on the region endpoint with
// its armAudiences and on the HSM endpoints with its hsmAudiences, and not
// on a plane it lists no audience for.
func trustedIssuers(cfgs []TrustedIssuerConfig, log *slog.Logger) (arm, hsm []identity.TrustedIssuer, err error) {
	for _, c := range cfgs {
		t := identity.TrustedIssuer{Issuer: c.Issuer, DiscoveryURL: c.DiscoveryURL, JWKSFile: c.JWKSFile, PrincipalClaim: c.PrincipalClaim}
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
