package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestHandshakeLogLimits drives the handshake log with a fake clock: a burst
// gives one line, the next line after the interval counts the ones left
// out, and other server errors pass unlimited.
func TestHandshakeLogLimits(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newHandshakeLog(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	for i := range 100 {
		l.Printf("http: TLS handshake error from 127.0.0.1:%d: remote error: tls: bad certificate", 1000+i)
	}
	l.Printf("http: panic serving 127.0.0.1:1: boom")
	l.Printf("http: panic serving 127.0.0.1:2: boom")
	now = now.Add(9 * time.Second)
	l.Printf("http: TLS handshake error from 127.0.0.1:2000: EOF")
	now = now.Add(time.Second)
	l.Printf("http: TLS handshake error from 127.0.0.1:3000: EOF")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var handshakes []string
	panics := 0
	for _, ln := range lines {
		switch {
		case strings.Contains(ln, "TLS handshake error"):
			handshakes = append(handshakes, ln)
		case strings.Contains(ln, "panic serving"):
			panics++
		}
	}
	if len(handshakes) != 2 || panics != 2 {
		t.Fatalf("log:\n%s\nwant 2 handshake lines and 2 others", buf.String())
	}
	if !strings.Contains(handshakes[0], "127.0.0.1:1000") || !strings.Contains(handshakes[0], "suppressedSinceLast=0") {
		t.Errorf("first line %q, want the first failure and nothing left out", handshakes[0])
	}
	if !strings.Contains(handshakes[1], "127.0.0.1:3000") || !strings.Contains(handshakes[1], "suppressedSinceLast=100") {
		t.Errorf("second line %q, want the failure after the interval and 100 left out", handshakes[1])
	}
}
