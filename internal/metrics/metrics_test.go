package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tresor/internal/metrics"
	"tresor/internal/pkgdoc"
)

func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }

// TestExposition checks the text format of each metric after one event,
// and that two servers' metrics do not share a registry.
func TestExposition(t *testing.T) {
	m, other := metrics.New(), metrics.New()
	m.Request("POST /keys/{name}/sign", 200, "hsm1", 3*time.Millisecond)
	m.KeyOperation("KeySign", "ES256")
	m.TokenIssued()
	m.TokenRequestRefused("invalid_client")
	m.TokenRefused("expired")
	m.JobEnded("backup", "Succeeded", 2*time.Second)
	m.StoreSize(func() float64 { return 4096 })
	got := expose(t, m)
	for _, want := range []string{
		`tresor_http_requests_total{hsm="hsm1",route="POST /keys/{name}/sign",status="200"} 1`,
		`tresor_http_request_duration_seconds_bucket{route="POST /keys/{name}/sign",le="0.005"} 1`,
		`tresor_http_request_duration_seconds_bucket{route="POST /keys/{name}/sign",le="0.0025"} 0`,
		`tresor_key_operations_total{algorithm="ES256",operation="KeySign"} 1`,
		`tresor_tokens_issued_total 1`,
		`tresor_token_requests_refused_total{error="invalid_client"} 1`,
		`tresor_tokens_refused_total{reason="expired"} 1`,
		`tresor_backup_jobs_total{kind="backup",result="Succeeded"} 1`,
		`tresor_backup_job_duration_seconds_sum{kind="backup"} 2`,
		`tresor_store_size_bytes 4096`,
		`go_goroutines `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if o := expose(t, other); strings.Contains(o, "tresor_tokens_issued_total 1") || strings.Contains(o, "tresor_store_size_bytes") {
		t.Error("a second Metrics shares the first one's counts")
	}
}

// TestNil checks that a nil *Metrics counts nothing without failing.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.Request("r", 200, "", time.Second)
	m.KeyOperation("KeySign", "ES256")
	m.TokenIssued()
	m.TokenRequestRefused("invalid_client")
	m.TokenRefused("expired")
	m.JobEnded("backup", "Failed", time.Second)
	m.StoreSize(func() float64 { return 1 })
}

func expose(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}
