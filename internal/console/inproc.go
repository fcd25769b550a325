package console

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
)

// inProcess is an http.RoundTripper that serves each request with the
// region's own API handler, in this process: the console's calls take
// exactly the routes, authentication, RBAC, validation and audit that az
// and the SDKs take over the network. Only the transport differs.
type inProcess struct {
	api http.Handler
}

// remoteKey carries the browser's address into the built requests, so
// that the API's rate limits and audit events name the real client.
type remoteKey struct{}

func withRemote(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

// maxAnswer bounds an in-process answer (a key list, a security domain).
const maxAnswer = 64 << 20

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Host = req.URL.Host
	r.RequestURI = req.URL.RequestURI()
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.RemoteAddr = "127.0.0.1:0"
	if a, ok := req.Context().Value(remoteKey{}).(string); ok && a != "" {
		r.RemoteAddr = a
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.Header.Set("User-Agent", "tresor-console")
	rec := &recorder{header: http.Header{}}
	t.api.ServeHTTP(rec, r)
	if req.Body != nil {
		req.Body.Close()
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// recorder is the in-process ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len()+len(p) > maxAnswer {
		return 0, io.ErrShortWrite
	}
	return w.body.Write(p)
}
