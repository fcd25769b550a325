// Package api is Tresor's HTTP layer: one route table for the region
// endpoint (control plane, identity) and the HSM endpoints (data plane),
// authentication, authorization and audit middleware driven by that table
// (each authenticated route names its audit operation; see [Auditor]), and
// the mapping of domain errors to Azure's error body.
//
// Requests are routed by Host: "{name}.{dnsSuffix}" reaches the data plane of
// instance {name}; any other host reaches the region endpoint.
package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"tresor/internal/backup"
	"tresor/internal/fault"
	"tresor/internal/identity"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/metrics"
	"tresor/internal/policy"
	"tresor/internal/uuid"
	"tresor/internal/wire"
)

// Config configures the API. RegionAdmins, ExternalPrincipals,
// IssuerTenants and the three rates (with Deps' validators) are the
// initial [Live] state, which [API.Reload] replaces.
type Config struct {
	Region string // location name
	// RegionDisplayName is the location's display name (e.g. "East US 2").
	RegionDisplayName string
	DNSSuffix         string // HSM hosts are {name}.{DNSSuffix}
	Port              int    // public port of the endpoints (for URLs)
	TenantID          string
	Subscription      string // the default subscription listed by GET /subscriptions
	Authority         string // region endpoint URL, e.g. https://localhost:8443
	HSMResource       string // the challenge's resource, e.g. https://managedhsm.localhost:8443
	ChallengeAuth     string // the challenge's authorization URL (default Authority + "/" + TenantID)
	// RegionAdmins are object ids of external principals that are region
	// administrators (local principals carry the flag themselves).
	RegionAdmins []string
	// ExternalPrincipals is set when trusted external issuers are
	// configured: their principals cannot be looked up, so any well-formed
	// object id is accepted in role assignments and as an administrator.
	// Without them, an object id must name a principal of the region.
	ExternalPrincipals bool
	// IssuerTenants are the tenants each trusted issuer (by its issuer URL)
	// speaks for, as configured; an issuer listed without tenants speaks
	// for the tid of its tokens.
	IssuerTenants map[string][]string
	// ExtraMgmtAudiences and ExtraHSMAudiences are accepted beside the
	// region endpoint and the HSM resource (e.g. Azure's own audiences).
	ExtraMgmtAudiences []string
	ExtraHSMAudiences  []string
	// AuditFailOpen answers a request whose audit event could not be
	// written as if it had been; by default (fail closed) it gets a 500.
	AuditFailOpen bool
	Logger        *slog.Logger
	// Metrics, if set, counts requests, key operations and tokens.
	Metrics *metrics.Metrics
	Now     func() time.Time
	// RequestBodyTimeout is how long a request's body may take to arrive
	// after its headers (0: no limit); a slower one fails with 408.
	RequestBodyTimeout time.Duration
	// TokenRatePerAddress and TokenRatePerClient limit token requests per
	// client address (IPv6 by /64) and per client id; PrincipalRate limits
	// the authenticated requests of each object id, on both endpoints.
	// Beyond them the answer is 429 with Retry-After (throttle.go).
	TokenRatePerAddress, TokenRatePerClient, PrincipalRate Rate
}

// MgmtAudiences are the token audiences the region endpoint accepts.
// Beside the region endpoint, these are Azure Resource Manager's own
// audiences, which ARM clients (az, Terraform, the armkeyvault SDK) ask for
// when Tresor is their resource manager.
func (c Config) MgmtAudiences() []string {
	auds := []string{strings.TrimSuffix(c.Authority, "/"), "https://management.core.windows.net/", "https://management.azure.com/"}
	return append(auds, c.ExtraMgmtAudiences...)
}

// HSMAudiences are the token audiences the HSM endpoints accept.
func (c Config) HSMAudiences() []string {
	return append([]string{c.HSMResource}, c.ExtraHSMAudiences...)
}

// Validator validates bearer tokens.
type Validator interface {
	Validate(ctx context.Context, token string) (identity.Caller, error)
}

// Principals manages the region's service principals.
type Principals interface {
	identity.PrincipalDirectory
	Create(ctx context.Context, displayName string, regionAdmin bool) (identity.Principal, string, error)
	Get(ctx context.Context, objectID string) (identity.Principal, error)
	List(ctx context.Context) ([]identity.Principal, error)
	Delete(ctx context.Context, objectID string) (identity.Principal, error)
}

// Deps are the services behind the API.
type Deps struct {
	Instances *instances.Service
	Policy    *policy.Service // the instances' RBAC policy and settings
	Keys      *keys.Service
	Backups   *backup.Service
	Issuer    *identity.Issuer
	// MgmtValidator accepts tokens for the region endpoint, HSMValidator
	// tokens for the HSM endpoints (they differ in accepted audiences).
	MgmtValidator Validator
	HSMValidator  Validator
	Principals    Principals
	// Cluster, if set, is the region's raft membership (nil on a single
	// node: the cluster routes answer NotACluster).
	Cluster Cluster
	// Audit, if set, receives one event per authenticated request (see
	// audit.go); nil audits nothing.
	Audit Auditor
}

// API is the HTTP handler of a region.
type API struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	region *http.ServeMux
	hsm    *http.ServeMux
	authz  authzCache // callers' grants per token and instance generation (rbac.go)
	limits *limits    // sign-in backoff (throttle.go)
	// live holds the validators, their token cache, the external region
	// administrators and the rate limiters, which Reload replaces.
	live atomic.Pointer[live]
}

// New builds the API and its route table.
func New(cfg Config, deps Deps) (*API, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ChallengeAuth == "" {
		cfg.ChallengeAuth = strings.TrimSuffix(cfg.Authority, "/") + "/" + cfg.TenantID
	}
	a := &API{cfg: cfg, deps: deps, log: cfg.Logger, region: http.NewServeMux(), hsm: http.NewServeMux(), limits: newLimits()}
	a.live.Store(newLive(Live{MgmtValidator: deps.MgmtValidator, HSMValidator: deps.HSMValidator,
		RegionAdmins: cfg.RegionAdmins, ExternalPrincipals: cfg.ExternalPrincipals, IssuerTenants: cfg.IssuerTenants,
		TokenRatePerAddress: cfg.TokenRatePerAddress, TokenRatePerClient: cfg.TokenRatePerClient, PrincipalRate: cfg.PrincipalRate}, nil))
	for _, rt := range a.routes() {
		if err := a.register(rt); err != nil {
			return nil, err
		}
	}
	return a, nil
}

type plane int

const (
	regionPlane plane = iota
	hsmPlane
)

// route is one entry of the route table.
type route struct {
	plane   plane
	method  string
	pattern string
	// insecureNoAuth serves the route without a token (identity endpoints).
	insecureNoAuth bool
	// auditNoAuth audits an insecureNoAuth route (token requests).
	auditNoAuth bool
	// action is the data action an HSM route needs (without prefix).
	action string
	// scope returns the RBAC scope of the request ("/" when nil).
	scope func(r *http.Request) string
	// needsActive refuses the route on an instance that is not activated.
	needsActive bool
	// armVersion requires an api-version query parameter (ARM routes).
	armVersion bool
	// versionOptional serves an HSM route without api-version (status
	// routes that clients poll exactly as given in Azure-AsyncOperation).
	versionOptional bool
	// duringRestore serves the route while a full restore of the instance
	// runs (restore status); every other HSM route answers 503 then.
	duringRestore bool
	// limit is the body limit in bytes (default 1 MiB).
	limit int64
	// op is the operation name in audit events (KeyCreate, KeySign, …);
	// every authenticated route has one.
	op string
	h  handler
	// keyName is set by register for routes whose {name} is a key name:
	// the decoded name must be a valid key name before authorization, so
	// that no spelling (%2F, dot segments, letters that fold onto ASCII
	// ones) reaches another key or passes a check meant for another.
	keyName bool
}

type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

// reqCtx carries what the middleware learned about a request.
type reqCtx struct {
	caller   identity.Caller
	tokenSum [sha256.Size]byte  // SHA-256 of the bearer token (the caches' key)
	admin    bool               // region administrator
	instance instances.Instance // HSM plane only
	live     *live              // the live configuration the request started with (reload.go)
}

func (rc *reqCtx) instCaller() instances.Caller {
	return instances.Caller{ObjectID: rc.caller.ObjectID, RegionAdmin: rc.admin}
}

func (a *API) register(rt route) error {
	if rt.plane == hsmPlane && rt.action == "" {
		return fmt.Errorf("api: route %s %s declares no data action", rt.method, rt.pattern)
	}
	if (!rt.insecureNoAuth || rt.auditNoAuth) && rt.op == "" {
		return fmt.Errorf("api: route %s %s declares no operation name for the audit log", rt.method, rt.pattern)
	}
	if rt.limit == 0 {
		rt.limit = 1 << 20
	}
	rt.keyName = rt.plane == hsmPlane && (strings.HasPrefix(rt.pattern, "/keys/{name}") || strings.HasPrefix(rt.pattern, "/deletedkeys/{name}"))
	mux := a.region
	if rt.plane == hsmPlane {
		mux = a.hsm
	}
	mux.Handle(rt.method+" "+rt.pattern, a.wrap(rt))
	return nil
}

// ServeHTTP implements http.Handler. A panic while serving (bbolt panics
// on some damaged pages; a memory fault on the mapped store file is made
// a panic too) fails that request with a 500 in Azure's error body and a
// log line, instead of dropping the connection.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if d := a.cfg.RequestBodyTimeout; d > 0 {
		// Bounds reading the body, also the part net/http drains after a
		// handler that did not read it (a 401 challenge): a client that
		// trickles a body cannot hold its connection longer.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	ri := &reqInfo{id: uuid.New()}
	rw := &respWriter{ResponseWriter: w, ri: ri, region: a.cfg.Region}
	ctx := r.Context()
	r = r.WithContext(context.WithValue(ctx, reqInfoKey{}, ri))
	defer a.logRequest(ctx, rw, r, ri, start) // after recoverPanic answered
	defer a.recoverPanic(rw, r)
	w = rw
	rw.setBaseHeaders()
	if name, ok := a.hsmName(r.Host); ok {
		a.serveHSM(w, rbacRequest(r), name) // RBAC paths carry their scope in front (rbac.go)
		return
	}
	if _, pattern := a.region.Handler(r); pattern == "" {
		a.writeError(w, r, fault.New(fault.NotFound, "NotFound", "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	a.region.ServeHTTP(w, r) // sets the path values
}

// recoverPanic turns a panic of the request into a logged 500 with the
// generic internal-error body. The log line has the request id, the
// route and the panic with its stack: never request bodies or keys.
// http.ErrAbortHandler keeps its meaning (abort the response quietly).
func (a *API) recoverPanic(w *respWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	a.log.ErrorContext(r.Context(), "panic serving a request", "requestId", w.Header().Get("x-ms-request-id"),
		"method", r.Method, "host", r.Host, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if w.wrote {
		panic(http.ErrAbortHandler) // the response has begun: end it, as net/http would
	}
	w.reset() // a held answer (and its headers) is dropped
	fe := fault.New(fault.Internal, "InternalError", "the server met an internal error; the request id is %s", w.Header().Get("x-ms-request-id"))
	writeJSON(w, http.StatusInternalServerError, wire.Error{Error: wire.ErrorDetail{Code: fe.Code, Message: fe.Message}})
}

// hsmName returns the instance name of an HSM host.
func (a *API) hsmName(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	suffix := "." + strings.ToLower(a.cfg.DNSSuffix)
	if !strings.HasSuffix(host, suffix) {
		return "", false
	}
	name := strings.TrimSuffix(host, suffix)
	return name, name != "" && !strings.Contains(name, ".")
}

func (a *API) serveHSM(w http.ResponseWriter, r *http.Request, name string) {
	// Without a token the answer is the challenge, whatever the name: it
	// must not tell which HSMs exist.
	if bearer(r) == "" {
		a.challenge(w, r, "")
		return
	}
	in, err := a.deps.Instances.Get(r.Context(), name)
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			err = fault.New(fault.NotFound, "ResourceNotFound", "no managed HSM named '%s' exists in this region", name)
		}
		a.writeError(w, r, err)
		return
	}
	ri := info(r)
	ri.hsm = in.Name
	if _, pattern := a.hsm.Handler(r); pattern == "" {
		a.writeError(w, r, fault.New(fault.NotFound, "NotFound", "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	// In the request's reqInfo, not in new context values: no copy of
	// the request, the instance boxed once.
	ri.instance, ri.base = in, strings.TrimSuffix(a.hsmURI(in.Key), "/")
	a.hsm.ServeHTTP(w, r)
}

// acceptedAPIVersions are the data-plane api-versions of spec §1.1.
var acceptedAPIVersions = []string{
	"7.0", "7.1", "7.2-preview", "7.2", "7.3-preview", "7.3", "7.4-preview.1", "7.4", "7.5-preview.1", "7.5",
	"7.6-preview.1", "7.6-preview.2", "7.6", "2025-06-01-preview", "2025-06-01", "2025-07-01", "2026-01-01-preview",
}

func (a *API) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r)
		ri.route, ri.op = rt.method+" "+rt.pattern, rt.op
		rc := &reqCtx{live: a.live.Load()}
		if rt.plane == hsmPlane {
			rc.instance = ri.instance
		}
		if (rt.insecureNoAuth && !rt.auditNoAuth) || a.deps.Audit == nil {
			a.serve(rt, w, r, rc)
			return
		}
		a.audited(rt, w, r, rc) // audit.go
	})
}

// serve authenticates, checks and authorizes the request as its route
// says, and runs its handler.
func (a *API) serve(rt route, w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !rt.insecureNoAuth {
		tok := bearer(r)
		if tok == "" {
			a.challenge(w, r, "")
			return
		}
		v := rc.live.MgmtValidator
		if rt.plane == hsmPlane {
			v = rc.live.HSMValidator
		}
		rc.tokenSum = sha256.Sum256([]byte(tok))
		caller, err := rc.live.tokens.validate(r.Context(), v, rt.plane, tok, rc.tokenSum, time.Now())
		if err != nil {
			a.tokenRefused(r, tok, err)
			a.challenge(w, r, err.Error())
			return
		}
		rc.caller = caller
		info(r).caller = caller.ObjectID
		admin, err := a.regionAdmin(r.Context(), rc.live, caller)
		if err != nil {
			if fault.KindOf(err) == fault.Unauthorized {
				info(r).refused = "principal not valid"
				a.challenge(w, r, err.Error())
				return
			}
			a.writeError(w, r, err)
			return
		}
		rc.admin = admin
		if err := a.throttlePrincipal(w, rc, caller.ObjectID); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if err := a.checkVersion(rt, r); err != nil {
		a.writeError(w, r, err)
		return
	}
	if rt.keyName {
		if err := keys.ValidateName(r.PathValue("name")); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if rt.plane == hsmPlane {
		if rc.instance.Staging != "" && !rt.duringRestore {
			a.writeError(w, r, instances.Restoring(rc.instance.Name))
			return
		}
		// A not activated HSM has no keys to protect: say so first.
		if rt.needsActive && rc.instance.ActivationStatus != instances.Active {
			a.writeError(w, r, notActivated(rc.instance))
			return
		}
		if err := a.authorize(r, rt, rc); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, rt.limit)
	if err := rt.h(w, r, rc); err != nil {
		a.writeError(w, r, err)
	}
}

func (a *API) checkVersion(rt route, r *http.Request) error {
	v := apiVersion(r)
	if rt.armVersion && v == "" {
		return fault.New(fault.BadParameter, "MissingApiVersionParameter", "the api-version query parameter (?api-version=) is required for all requests")
	}
	if rt.plane == hsmPlane {
		if v == "" && rt.versionOptional {
			return nil
		}
		if v == "" {
			return fault.New(fault.BadParameter, "BadParameter", "the api-version query parameter is required; supported versions: %s", strings.Join(acceptedAPIVersions, ", "))
		}
		if !slices.Contains(acceptedAPIVersions, v) {
			return fault.New(fault.BadParameter, "BadParameter", "the api-version '%s' is not supported; supported versions: %s", v, strings.Join(acceptedAPIVersions, ", "))
		}
	}
	return nil
}

// regionAdmin tells whether the caller is a region administrator. A local
// token whose principal was deleted is no longer valid.
//
// Principals are identified by object id in role assignments, so an
// external token whose id names a local principal is refused: it would
// inherit that principal's roles.
func (a *API) regionAdmin(ctx context.Context, l *live, c identity.Caller) (bool, error) {
	p, err := a.deps.Principals.Get(ctx, c.ObjectID)
	switch {
	case c.Local && fault.KindOf(err) == fault.NotFound:
		return false, fault.New(fault.Unauthorized, "Unauthorized", "the principal of this token no longer exists")
	case !c.Local && err == nil:
		return false, fault.New(fault.Unauthorized, "Unauthorized", "the principal id of this token names a principal of the region's own identity service")
	case err != nil && fault.KindOf(err) != fault.NotFound:
		return false, err
	}
	if slices.ContainsFunc(l.RegionAdmins, func(s string) bool { return strings.EqualFold(s, c.ObjectID) }) {
		return true, nil
	}
	return c.Local && p.RegionAdmin, nil
}

// knownPrincipals checks that object ids name principals (see
// Config.ExternalPrincipals).
func (a *API) knownPrincipals(ctx context.Context, l *live, field string, ids ...string) error {
	if l.ExternalPrincipals {
		return nil
	}
	for _, id := range ids {
		if slices.ContainsFunc(l.RegionAdmins, func(s string) bool { return strings.EqualFold(s, id) }) {
			continue
		}
		if _, err := a.deps.Principals.Get(ctx, strings.ToLower(id)); err != nil {
			if fault.KindOf(err) == fault.NotFound {
				return fault.New(fault.BadParameter, "PrincipalNotFound",
					"%s: no principal with object id '%s' exists in this region (create it with tresor principal create, or trust its identity provider)", field, id)
			}
			return err
		}
	}
	return nil
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// challenge answers 401. On the HSM endpoints the WWW-Authenticate header
// carries the authorization URL and the resource, so that Azure SDKs can get
// a token (spec §1.2, §9.2); it comes before any body validation.
func (a *API) challenge(w http.ResponseWriter, r *http.Request, reason string) {
	hdr := fmt.Sprintf(`Bearer authorization="%s", resource="%s"`, a.cfg.ChallengeAuth, a.cfg.HSMResource)
	if _, ok := a.hsmName(r.Host); !ok {
		hdr = fmt.Sprintf(`Bearer authorization_uri="%s", error="invalid_token", error_description="the access token is missing or invalid"`, a.cfg.ChallengeAuth)
	}
	w.Header().Set("WWW-Authenticate", hdr)
	if ri := info(r); reason == "" && ri.refused == "" {
		ri.refused = "missing"
	}
	msg := "the request is missing a bearer token"
	code := "Unauthorized"
	if reason != "" {
		msg = "the bearer token is not valid: " + reason
		code = "InvalidAuthenticationToken"
	}
	info(r).code = code
	writeJSON(w, http.StatusUnauthorized, errorBody(code, msg))
}

func errorBody(code, msg string) any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

// notActivated is the error of a data-plane route on an instance that is
// not active: it says which security-domain step the instance waits for.
func notActivated(in instances.Instance) error {
	if len(in.ExchangeCert) > 0 {
		return fault.New(fault.Conflict, "HSMNotActivated",
			"the managed HSM '%s' is in recovery mode and not activated yet: upload its security domain first (tresor security-domain upload, or az keyvault security-domain upload)", in.Name)
	}
	return fault.New(fault.Conflict, "HSMNotActivated",
		"the managed HSM '%s' is not activated: activate it by downloading its security domain (tresor security-domain download, or az keyvault security-domain download)", in.Name)
}

// tokenRefused notes why a bearer token was refused, for the metrics and,
// at debug level, the log: the reason, and the issuer, audiences and key id
// the token claims; never the token.
func (a *API) tokenRefused(r *http.Request, tok string, err error) {
	reason := identity.Reason(err)
	if reason == "" {
		reason = "other"
	}
	info(r).refused = reason
	if !a.log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	l := identity.DescribeToken(tok)
	a.log.DebugContext(r.Context(), "bearer token refused", "requestId", info(r).id,
		"reason", reason, "iss", l.Issuer, "aud", l.Audience, "kid", l.KeyID)
}
