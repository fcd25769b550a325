package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	"tresor/internal/instances"
	"tresor/internal/wire"
)

// The request log: ServeHTTP writes one line per request, authenticated or
// not, routed or not, with what the middleware learned on the way (the
// route pattern, the HSM, the caller) and the answer (status, Azure error
// code). It never holds a token, a body, a query string or key material;
// the error code is the one writeError recorded, else it is read from the
// error body, which is not logged.

// reqInfo is what the layers of a request record for its log line and
// metrics. ServeHTTP puts it in the request's context.
type reqInfo struct {
	id     string // the request id (x-ms-request-id)
	route  string // "METHOD pattern"; "" when no route matched
	op     string // the route's audit operation
	hsm    string // name of an existing HSM (HSM plane)
	caller string // object id of an authenticated caller
	alg    string // algorithm of a key operation (counted only on success)
	// refused is why a bearer token was refused ("missing" without one).
	refused string
	// code is the Azure error code of an error answer, as writeError (or
	// the challenge) wrote it; "" when the body has to tell.
	code string
	// kid is the key id a successful key answer names (see writeJSON).
	kid string
	// instance and base are the HSM plane's instance and its base URL
	// (see serveHSM, hsmBase).
	instance instances.Instance
	base     string
	// version is the api-version query parameter, once apiVersion read it.
	version     string
	versionRead bool
}

type reqInfoKey struct{}

// info returns the request's reqInfo (a throwaway one outside ServeHTTP).
func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// apiVersion is the request's api-version query parameter, parsed once.
func apiVersion(r *http.Request) string {
	ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo)
	if !ok {
		return r.URL.Query().Get("api-version")
	}
	if !ri.versionRead {
		ri.version, ri.versionRead = r.URL.Query().Get("api-version"), true
	}
	return ri.version
}

// maxErrorBody is how much of an error answer is kept to read its code.
const maxErrorBody = 8 << 10

// logRequest writes the request's log line and counts it.
func (a *API) logRequest(ctx context.Context, w *respWriter, r *http.Request, ri *reqInfo, start time.Time) {
	d := time.Since(start)
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	code := w.errorCode()
	route := ri.route
	if route == "" {
		route = "unmatched"
	}
	m := a.cfg.Metrics
	m.Request(route, status, ri.hsm, d)
	switch {
	case ri.op == "TokenIssue" && status == http.StatusOK:
		m.TokenIssued()
	case ri.op == "TokenIssue" && status >= 400 && code != "":
		m.TokenRequestRefused(code)
	}
	if ri.refused != "" {
		m.TokenRefused(ri.refused)
	}
	if ri.alg != "" && status < 300 {
		m.KeyOperation(ri.op, ri.alg)
	}
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	a.log.LogAttrs(ctx, level, "request",
		slog.String("requestId", ri.id),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("hsm", ri.hsm),
		slog.Int("status", status),
		slog.String("errorCode", code),
		slog.Float64("durationMs", float64(d.Microseconds())/1000),
		slog.String("callerObjectId", ri.caller),
		slog.String("clientIp", ip),
	)
}

// errorCode is the Azure error code (or the OAuth error) of the answer,
// if it is an error: as recorded, else read from its body.
func (w *respWriter) errorCode() string {
	if w.status < 400 {
		return ""
	}
	if w.ri.code != "" {
		return clip(w.ri.code, 100)
	}
	return errorCode(w.errBody.Bytes())
}

// errorCode is the Azure error code (or the OAuth error) of an error body.
func errorCode(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var body wire.Error
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		return clip(body.Error.Code, 100)
	}
	var oauth wire.OAuthError
	if json.Unmarshal(b, &oauth) == nil {
		return clip(oauth.Error, 100)
	}
	return ""
}
