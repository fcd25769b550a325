package server_test

import (
	"context"
	"strings"
	"testing"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// TestPprof: --pprof serves Go's profiles on the admin listener only, and
// needs one; without it there are none.
func TestPprof(t *testing.T) {
	on := servertest.Start(t, withAdmin, func(c *server.Config) { c.Pprof = true })
	if code, body := adminGet(t, on, "/debug/pprof/cmdline"); code != 200 {
		t.Errorf("pprof on: /debug/pprof/cmdline %d %.200s", code, body)
	}
	if code, body := adminGet(t, on, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof on: /debug/pprof/ %d %.200s", code, body)
	}
	// The region's listener never serves them, with or without a token.
	resp, err := on.HTTPClient(t).Get(on.Endpoint + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("the region endpoint serves /debug/pprof/cmdline")
	}

	off := servertest.Start(t, withAdmin)
	if code, _ := adminGet(t, off, "/debug/pprof/cmdline"); code != 404 {
		t.Errorf("pprof off: /debug/pprof/cmdline %d, want 404", code)
	}

	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Dev, cfg.Pprof = t.TempDir(), true, true
	if _, err := server.New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "pprof (--pprof) needs adminListen") {
		t.Errorf("pprof without the admin listener: %v", err)
	}
}
