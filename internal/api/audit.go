package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"tresor/internal/audit"
	"tresor/internal/uuid"
	"tresor/internal/wire"
)

// Auditor records audit events; *audit.Log is one. Write returns once the
// event is durable, or with the error that kept it from being so.
type Auditor interface {
	Write(ctx context.Context, e audit.Event) error
}

// audited serves an authenticated route and writes its audit event before
// any byte of the response leaves: the handler's answer is held back (it is
// small: key operations, lists and job descriptions), the event records its
// status, and only once the event is durable is the answer sent. If the
// event cannot be written the answer is a 500 instead (fail closed; unless
// Config.AuditFailOpen): the operation itself may have been applied then,
// as after any crash between commit and answer, and the server log says
// which request it was.
//
// Every request that reaches an authenticated route is audited, including
// refused ones (403, 400, 409 …) and ones with an invalid token (401,
// without identity), but not a request without any token: that is the
// challenge every SDK provokes first, and names nobody. Token requests are
// audited too, named by their client id (never the secret), so that failed
// sign-ins show.
func (a *API) audited(rt route, w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	start := time.Now()
	rw := respWriterOf(w, r)
	rw.hold = true // a panic leaves it held: recoverPanic drops it
	a.serve(rt, rw, r, rc)
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	if bearer(r) == "" && rw.status == http.StatusUnauthorized && !rt.insecureNoAuth {
		rw.release()
		return
	}
	ev := a.auditEvent(rt, r, rc, rw, start)
	if err := a.deps.Audit.Write(context.WithoutCancel(r.Context()), ev); err != nil {
		a.log.ErrorContext(r.Context(), "audit event not written", "operation", rt.op, "status", rw.status,
			"requestId", ev.Properties.RequestID, "failClosed", !a.cfg.AuditFailOpen, "err", err)
		if !a.cfg.AuditFailOpen {
			rw.reset()
			writeJSON(rw, http.StatusInternalServerError, wire.Error{Error: wire.ErrorDetail{Code: "AuditLogUnavailable",
				Message: "the request could not be recorded in the audit log, so its answer is withheld; its effect may have been applied. The request id is " + ev.Properties.RequestID}})
			rw.ri.code = "AuditLogUnavailable"
			return
		}
	}
	rw.release()
}

// auditEvent describes a served request. It names what was asked of which
// resource, by whom, and the answer's status, never a body, a token or a
// query string (storage URIs may carry SAS tokens there).
func (a *API) auditEvent(rt route, r *http.Request, rc *reqCtx, rec *respWriter, start time.Time) audit.Event {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if path == "" || path[0] != '/' {
		path = r.URL.Path // an absolute-form request URI
	}
	ev := audit.Event{
		Time:             start.UTC(),
		OperationName:    rt.op,
		OperationVersion: clip(apiVersion(r), 40),
		ResultType:       audit.ResultSuccess,
		ResultSignature:  strings.ReplaceAll(http.StatusText(rec.status), " ", ""),
		DurationMs:       time.Since(start).Milliseconds(),
		CallerIPAddress:  r.RemoteAddr,
		CorrelationID:    clip(r.Header.Get("x-ms-client-request-id"), 100),
		Properties: audit.Properties{
			RequestURI:     "https://" + clip(r.Host, 300) + clip(path, 2048),
			HTTPMethod:     r.Method,
			HTTPStatusCode: rec.status,
			RequestID:      rec.Header().Get("x-ms-request-id"),
			ClientInfo:     clip(r.UserAgent(), 256),
		},
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ev.CallerIPAddress = host
	}
	if rec.status >= 400 {
		ev.ResultType = audit.ResultFailure
		ev.ResultDescription = rec.errorCode()
	}
	if c := rc.caller; c.ObjectID != "" {
		ev.Identity = &audit.Identity{Claim: audit.Claim{ObjectID: c.ObjectID, AppID: c.ClientID, TenantID: c.TenantID}}
	}
	if rt.insecureNoAuth { // a token request: the client it names (the handler parsed the form)
		id := r.PostForm.Get("client_id")
		if u, _, ok := r.BasicAuth(); ok && id == "" {
			id = u
		}
		// Only a well-formed client id: a client that swapped its id and
		// secret must not leave the secret here.
		if uuid.Valid(id) {
			ev.Identity = &audit.Identity{Claim: audit.Claim{AppID: strings.ToLower(id), TenantID: clip(r.PathValue("tenant"), 100)}}
		}
	}
	if rt.plane == hsmPlane {
		in := rc.instance
		ev.ResourceID = armHSMPrefix(in.Subscription, in.ResourceGroup) + "/" + in.Name
		ev.Properties.ID = hsmBase(r)
		if name := r.PathValue("name"); name != "" && (strings.HasPrefix(rt.pattern, "/keys/") || strings.HasPrefix(rt.pattern, "/deletedkeys/")) {
			ev.Properties.ID = hsmBase(r) + "/keys/" + name
			if v := r.PathValue("version"); v != "" {
				ev.Properties.ID += "/" + v
			}
			if k := rec.ri.kid; k != "" && rec.status < 300 {
				ev.Properties.ID = clip(k, 2048)
			}
		}
	} else {
		ev.ResourceID = clip(r.URL.Path, 2048)
	}
	return ev
}

func armHSMPrefix(sub, rg string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/managedHSMs"
}

// clip bounds a client-given value.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
