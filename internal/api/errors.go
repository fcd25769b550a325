package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"tresor/internal/fault"
	"tresor/internal/store"
	"tresor/internal/wire"
)

// status maps an error kind to its HTTP status. This is the only place
// where kinds become statuses.
func status(k fault.Kind) int {
	switch k {
	case fault.BadParameter:
		return http.StatusBadRequest
	case fault.Unauthorized:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.TooLarge:
		return http.StatusRequestEntityTooLarge
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	case fault.NotImplemented:
		return http.StatusNotImplemented
	case fault.Timeout:
		return http.StatusRequestTimeout
	case fault.Throttled:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// writeError writes err as Azure's error body. Errors without a kind become
// a 500 with a generic message; their detail goes only to the log.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fault.New(fault.TooLarge, "RequestTooLarge", "the request body is larger than the %d bytes this operation accepts", mbe.Limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyTimeout(a.cfg.RequestBodyTimeout)
	}
	if errors.Is(err, store.ErrUnavailable) {
		// A cluster node without a leader within its lease, or a write
		// that found no leader: the client retries (Retry-After).
		err = fault.Wrap(err, fault.Unavailable, "ServiceUnavailable", "this node of the region cannot serve now (%v); retry shortly", err)
	}
	fe, ok := fault.As(err)
	if !ok || fe.Kind == fault.Internal {
		a.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		fe = fault.New(fault.Internal, "InternalError", "the server met an internal error; the request id is %s", w.Header().Get("x-ms-request-id"))
	}
	if fe.Kind == fault.Unavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	info(r).code = fe.Code // for the request log and the audit event, which need not parse the body
	body := wire.Error{Error: wire.ErrorDetail{Code: fe.Code, Message: fe.Message}}
	if fe.Inner != "" {
		body.Error.InnerError = &wire.InnerError{Code: fe.Inner}
	}
	writeJSON(w, status(fe.Kind), body)
}

// errBodyTimeout is the error of a request whose body did not arrive
// within the body timeout (the read deadline ServeHTTP sets).
func errBodyTimeout(d time.Duration) error {
	return fault.New(fault.Timeout, "RequestTimeout", "the request body did not arrive within %s of its headers", d)
}

// writeJSON writes v as the answer, with status code. A key answer's key
// id is recorded for the audit event (see reqInfo.kid).
func writeJSON(w http.ResponseWriter, code int, v any) {
	if rw, ok := w.(*respWriter); ok && code < 300 {
		switch b := v.(type) {
		case wire.KeyBundle:
			rw.ri.kid = b.Key.Kid
		case wire.DeletedKeyBundle:
			rw.ri.kid = b.Key.Kid
		case wire.KeyOperationResult:
			rw.ri.kid = b.Kid
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("encode response", "err", err)
		code = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalError","message":"the response could not be encoded"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// decodeJSON reads a JSON body into v. Unknown fields are allowed: Azure
// clients send fields that only some API versions know.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
			return err // writeError says what happened
		}
		return fault.Wrap(err, fault.BadParameter, "BadParameter", "the request body is not valid JSON for this operation: %s", jsonMessage(err))
	}
	if dec.More() {
		return fault.New(fault.BadParameter, "BadParameter", "the request body has data after the JSON value")
	}
	return nil
}

// decodeJSONStrict is [decodeJSON] that refuses fields the wire shape does
// not know, naming the field, so that nothing a client sends is silently
// dropped.
func decodeJSONStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fault.Wrap(err, fault.BadParameter, "BadParameter", "the request body has a field Tresor does not support: %s", f)
		}
		return fault.Wrap(err, fault.BadParameter, "BadParameter", "the request body is not valid JSON for this operation: %s", jsonMessage(err))
	}
	if dec.More() {
		return fault.New(fault.BadParameter, "BadParameter", "the request body has data after the JSON value")
	}
	return nil
}

// jsonMessage describes a JSON error without echoing input values.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " must be " + te.Type.String()
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error"
	}
	if err.Error() == "EOF" {
		return "the body is empty"
	}
	return "malformed"
}
