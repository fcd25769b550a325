package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tresor/internal/instances"
	"tresor/internal/wire"
)

// TestRespWriterHold: a held answer reaches the connection only on
// release, whole and with its length; reset drops it with the headers the
// handler set, keeping the ones every answer carries.
func TestRespWriterHold(t *testing.T) {
	tests := map[string]struct {
		handler    func(w http.ResponseWriter)
		reset      bool
		wantStatus int
		wantBody   string
		wantHeader map[string]string // "" means absent
	}{
		"held then released": {
			handler: func(w http.ResponseWriter) {
				w.Header().Set("Location", "/x")
				w.WriteHeader(http.StatusAccepted)
				_, _ = w.Write([]byte(`{"a":`))
				_, _ = w.Write([]byte(`1}`))
			},
			wantStatus: http.StatusAccepted, wantBody: `{"a":1}`,
			wantHeader: map[string]string{"Location": "/x", "Content-Length": "7", "x-ms-request-id": "rid"},
		},
		"write without header": {
			handler:    func(w http.ResponseWriter) { _, _ = w.Write([]byte("ok")) },
			wantStatus: http.StatusOK, wantBody: "ok",
			wantHeader: map[string]string{"Content-Length": "2"},
		},
		"reset drops the answer and its headers": {
			handler: func(w http.ResponseWriter) {
				w.Header().Set("Location", "/x")
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte("secret answer"))
			},
			reset:      true,
			wantStatus: http.StatusInternalServerError, wantBody: `{"error":{"code":"AuditLogUnavailable","message":"m"}}`,
			wantHeader: map[string]string{"Location": "", "x-ms-request-id": "rid", "x-ms-keyvault-region": "eastus"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rw := &respWriter{ResponseWriter: rec, ri: &reqInfo{id: "rid"}, region: "eastus", hold: true}
			rw.setBaseHeaders()
			tc.handler(rw)
			if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Flushed || rw.wrote {
				t.Fatalf("a held answer reached the connection: %d %q", rec.Code, rec.Body.String())
			}
			if http.NewResponseController(rw).Flush() == nil {
				t.Fatal("a held answer can be flushed")
			}
			if tc.reset {
				rw.reset()
				writeJSON(rw, http.StatusInternalServerError, wire.Error{Error: wire.ErrorDetail{Code: "AuditLogUnavailable", Message: "m"}})
			}
			rw.release()
			rw.release() // a second release sends nothing
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
				t.Errorf("answer %d %q, want %d %q", rec.Code, rec.Body.String(), tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestRespWriterRecords: writeError records the error code and writeJSON
// the key id of a key answer, so that the log and the audit event need not
// parse bodies; an error written otherwise is still read from its body.
func TestRespWriterRecords(t *testing.T) {
	a := &API{log: slog.New(slog.DiscardHandler)}
	newRW := func() (*respWriter, *http.Request) {
		ri := &reqInfo{}
		r := httptest.NewRequest("GET", "/", nil)
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		return &respWriter{ResponseWriter: httptest.NewRecorder(), ri: ri}, r
	}
	rw, r := newRW()
	a.writeError(rw, r, notActivated(instances.Instance{Key: "h"}))
	if rw.ri.code != "HSMNotActivated" || rw.errorCode() != "HSMNotActivated" || rw.errBody.Len() != 0 {
		t.Errorf("writeError: code %q, errorCode %q, kept %d body bytes", rw.ri.code, rw.errorCode(), rw.errBody.Len())
	}
	rw, _ = newRW()
	writeJSON(rw, http.StatusBadRequest, wire.OAuthError{Error: "invalid_client"})
	if rw.errorCode() != "invalid_client" {
		t.Errorf("an OAuth error body: %q", rw.errorCode())
	}
	for _, v := range []any{
		wire.KeyBundle{Key: wire.JSONWebKey{Kid: "https://h/keys/k/v1"}},
		wire.DeletedKeyBundle{KeyBundle: wire.KeyBundle{Key: wire.JSONWebKey{Kid: "https://h/keys/k/v1"}}},
		wire.KeyOperationResult{Kid: "https://h/keys/k/v1", Value: "x"},
	} {
		rw, _ = newRW()
		writeJSON(rw, http.StatusOK, v)
		if rw.ri.kid != "https://h/keys/k/v1" {
			t.Errorf("%T: kid %q", v, rw.ri.kid)
		}
	}
	rw, _ = newRW()
	writeJSON(rw, http.StatusOK, wire.KeyVerifyResult{Value: true})
	if rw.ri.kid != "" || rw.errorCode() != "" || !strings.Contains(rw.ResponseWriter.(*httptest.ResponseRecorder).Body.String(), "true") {
		t.Errorf("verify: kid %q code %q", rw.ri.kid, rw.errorCode())
	}
}
