package api

import (
	"errors"
	"net/http"
	"os"
	"strings"

	"tresor/internal/fault"
	"tresor/internal/identity"
	"tresor/internal/wire"
)

// healthz is the region's liveness check: 200 while the process serves
// requests. It needs no token and touches no state.
func (a *API) healthz(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "Healthy"})
	return nil
}

func (a *API) regionInfo(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	writeJSON(w, http.StatusOK, wire.RegionInfo{
		Region: a.cfg.Region, DNSSuffix: a.cfg.DNSSuffix, TenantID: a.cfg.TenantID,
		Endpoint: a.cfg.Authority, Authority: a.cfg.Authority, SubscriptionID: a.cfg.Subscription,
		HSMResource: a.cfg.HSMResource, ManagementResource: a.cfg.Authority,
	})
	return nil
}

// token is the OAuth 2.0 token endpoint (client credentials; secrets in the
// form or in HTTP Basic authentication).
func (a *API) token(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if !a.throttleToken(w, r, rc, "") {
		return nil
	}
	if err := r.ParseForm(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			writeJSON(w, http.StatusRequestTimeout, wire.OAuthError{Error: identity.OAuthInvalidRequest, ErrorDescription: "the request body did not arrive in time"})
			return nil
		}
		writeJSON(w, http.StatusBadRequest, wire.OAuthError{Error: identity.OAuthInvalidRequest, ErrorDescription: "the request body must be application/x-www-form-urlencoded"})
		return nil
	}
	req := identity.TokenRequest{
		TenantID: r.PathValue("tenant"), GrantType: r.PostForm.Get("grant_type"),
		ClientID: r.PostForm.Get("client_id"), ClientSecret: r.PostForm.Get("client_secret"),
		Scope: r.PostForm.Get("scope"), Resource: r.PostForm.Get("resource"),
	}
	if id, secret, ok := r.BasicAuth(); ok && req.ClientID == "" {
		req.ClientID, req.ClientSecret = id, secret
	}
	if req.ClientID != "" && !a.throttleToken(w, r, rc, req.ClientID) {
		return nil
	}
	auds := append(append([]string{}, a.cfg.MgmtAudiences()...), a.cfg.HSMAudiences()...)
	resp, err := a.deps.Issuer.Token(r.Context(), a.deps.Principals, req, auds)
	var oe *identity.OAuthError
	if errors.As(err, &oe) {
		a.signInResult(r, req.ClientID, oe)
		code := http.StatusBadRequest
		if oe.Code == identity.OAuthInvalidClient {
			code = http.StatusUnauthorized
		}
		writeJSON(w, code, wire.OAuthError{Error: oe.Code, ErrorDescription: oe.Description, ErrorCodes: oe.ErrorCodes,
			Timestamp: a.cfg.Now().UTC().Format("2006-01-02 15:04:05Z"), TraceID: w.Header().Get("x-ms-request-id")})
		return nil
	}
	if err != nil {
		return err
	}
	a.signInResult(r, req.ClientID, nil)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *API) openIDConfiguration(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.tenantDocument(w, r, a.deps.Issuer.OpenIDConfiguration())
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.tenantDocument(w, r, a.deps.Issuer.JWKS())
}

// tenantDocument answers with doc, a JSON document of the region's tenant,
// if the request's {tenant} is that tenant.
func (a *API) tenantDocument(w http.ResponseWriter, r *http.Request, doc []byte) error {
	if !strings.EqualFold(r.PathValue("tenant"), a.cfg.TenantID) {
		return fault.New(fault.NotFound, "TenantNotFound", "tenant '%s' is not served by this region", r.PathValue("tenant"))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(doc)
	return nil
}

func (a *API) account(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	acc := wire.Account{
		ObjectID: rc.caller.ObjectID, ClientID: rc.caller.ClientID, TenantID: rc.caller.TenantID,
		Issuer: rc.caller.Issuer, Region: a.cfg.Region, RegionAdmin: rc.admin, DefaultSubscription: a.cfg.Subscription,
	}
	if rc.caller.Local {
		if p, err := a.deps.Principals.Get(r.Context(), rc.caller.ObjectID); err == nil {
			acc.DisplayName = p.DisplayName
			acc.ClientID = p.ClientID
		}
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}

func requireRegionAdmin(rc *reqCtx, what string) error {
	if !rc.admin {
		return fault.New(fault.Forbidden, "AuthorizationFailed", "the client '%s' is not a region administrator and may not %s", rc.caller.ObjectID, what)
	}
	return nil
}

func toWirePrincipal(p identity.Principal) wire.Principal {
	return wire.Principal{ObjectID: p.ObjectID, ClientID: p.ClientID, DisplayName: p.DisplayName, RegionAdmin: p.RegionAdmin, Created: p.Created}
}

func (a *API) listPrincipals(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := requireRegionAdmin(rc, "list principals"); err != nil {
		return err
	}
	ps, err := a.deps.Principals.List(r.Context())
	if err != nil {
		return err
	}
	out := wire.PrincipalList{Value: []wire.Principal{}}
	for _, p := range ps {
		out.Value = append(out.Value, toWirePrincipal(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) createPrincipal(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := requireRegionAdmin(rc, "create principals"); err != nil {
		return err
	}
	var body wire.PrincipalCreate
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	body.DisplayName = strings.TrimSpace(body.DisplayName)
	if body.DisplayName == "" || len(body.DisplayName) > 256 {
		return fault.New(fault.BadParameter, "BadParameter", "displayName must be 1-256 characters")
	}
	p, secret, err := a.deps.Principals.Create(r.Context(), body.DisplayName, body.RegionAdmin)
	if err != nil {
		return err
	}
	out := toWirePrincipal(p)
	out.ClientSecret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) deletePrincipal(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := requireRegionAdmin(rc, "delete principals"); err != nil {
		return err
	}
	oid := r.PathValue("oid")
	if oid == rc.caller.ObjectID {
		return fault.New(fault.Conflict, "Conflict", "a principal cannot delete itself")
	}
	p, err := a.deps.Principals.Delete(r.Context(), oid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWirePrincipal(p))
	return nil
}
