package api

import (
	"bytes"
	"net/http"
	"strconv"
)

// respWriter is the one response writer of a request, made by ServeHTTP.
// It does what three wrappers did before, with one header map and no
// copies:
//
//   - it records whether the answer has begun on the wire, so that a
//     panic can still be answered when it has not (recoverPanic);
//   - it keeps the status and the start of an error body for the request
//     log and the audit event, whose Azure code writeError records
//     directly (reqInfo.code), so that the body is parsed only for answers
//     not written by writeError;
//   - while held (audited routes), it keeps the handler's answer back
//     until the audit event is durable: nothing reaches the connection
//     before [respWriter.release], and [respWriter.reset] replaces a held
//     answer by another (the audit failure's 500, a panic's 500).
type respWriter struct {
	http.ResponseWriter
	ri      *reqInfo
	region  string       // for the x-ms-keyvault-region header
	wrote   bool         // the answer has begun on the wire
	status  int          // the answer's status (0 until written)
	hold    bool         // keep the answer back (see release)
	body    bytes.Buffer // a held answer's body
	errBody bytes.Buffer // the start of an error answer (status >= 400)
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	if w.hold {
		return
	}
	if !w.wrote {
		w.wrote = true
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.keepErrorBody(p)
	if w.hold {
		return w.body.Write(p)
	}
	if !w.wrote {
		w.WriteHeader(w.status)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the connection's writer, except
// while the answer is held: a flush then would send it before its audit
// event is written.
func (w *respWriter) Unwrap() http.ResponseWriter {
	if w.hold {
		return nil
	}
	return w.ResponseWriter
}

// release sends a held answer (with its length, so that net/http never
// chunks it) and stops holding.
func (w *respWriter) release() {
	if !w.hold {
		return
	}
	w.hold = false
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.Header().Set("Content-Length", strconv.Itoa(w.body.Len()))
	w.wrote = true
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(w.body.Bytes())
}

// reset drops a held answer, its headers and status included, so that
// another can be written in its place; it must not be called once the
// answer has begun on the wire.
func (w *respWriter) reset() {
	w.hold = false
	w.status = 0
	w.body.Reset()
	w.errBody.Reset()
	w.ri.code, w.ri.kid = "", ""
	clear(w.Header())
	w.setBaseHeaders()
}

// setBaseHeaders sets the headers every answer carries (also the 500 that
// replaces a held answer).
func (w *respWriter) setBaseHeaders() {
	// The keys in canonical form, as Header.Set would make them, without
	// canonicalizing them on every request; the constant values shared.
	h := w.Header()
	h["X-Ms-Request-Id"] = []string{w.ri.id}
	h["Cache-Control"] = noCache
	h["X-Content-Type-Options"] = nosniff
	h["Strict-Transport-Security"] = hsts
	h["X-Ms-Keyvault-Region"] = []string{w.region}
}

// Values of the headers every answer carries. net/http only reads them;
// a handler that changes one replaces the slice (Header.Set), never its
// elements.
var (
	noCache = []string{"no-cache"}
	nosniff = []string{"nosniff"}
	hsts    = []string{"max-age=31536000; includeSubDomains"}
)

// keepErrorBody keeps the start of an error answer (status >= 400) so
// that its code can be logged when writeError did not record it.
func (w *respWriter) keepErrorBody(p []byte) {
	if w.status < 400 || w.ri.code != "" {
		return
	}
	if room := maxErrorBody - w.errBody.Len(); room > 0 {
		w.errBody.Write(p[:min(len(p), room)])
	}
}

// respWriterOf returns w as the request's respWriter, or wraps it in one
// (for handlers reached without ServeHTTP, as in tests).
func respWriterOf(w http.ResponseWriter, r *http.Request) *respWriter {
	if rw, ok := w.(*respWriter); ok {
		return rw
	}
	return &respWriter{ResponseWriter: w, ri: info(r)}
}
