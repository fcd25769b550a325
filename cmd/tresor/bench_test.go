package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBenchDev runs the command with a short duration: tresor
// bench starts its own region (this binary's `tresor server --dev`) and
// bare server as child processes, and prints one JSON row per key with
// exactly the fields. A functional test: it asserts no rate.
func TestBenchDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildTresor()
	if err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(t.TempDir(), "bench.svg")
	cmd := exec.Command(bin, "bench", "--dev", "--ops", "sign", "--keys", "RSA-2048,P-256", "--concurrency", "16",
		"--duration", "2s", "--json", "--svg", svg)
	cmd.Env = append(os.Environ(), "TRESOR_CONFIG_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tresor bench: %v\nstderr:\n%s", err, stderr.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, stdout.String())
	}
	fields := []string{"key", "op", "concurrency", "opsPerSec", "p50Ms", "p99Ms", "errors", "cryptoCeilingOpsPerSec", "httpsCeilingOpsPerSec", "ratio"}
	var keys []string
	for _, r := range rows {
		var got []string
		for f := range r {
			got = append(got, f)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(fields))
		if !slices.Equal(got, want) {
			t.Errorf("row %v: fields %v, want %v", r, got, want)
		}
		keys = append(keys, r["key"].(string))
		if r["op"] != "sign" || r["concurrency"] != 16.0 || r["errors"] != 0.0 {
			t.Errorf("row %v", r)
		}
		for _, f := range []string{"opsPerSec", "p50Ms", "p99Ms", "cryptoCeilingOpsPerSec", "httpsCeilingOpsPerSec", "ratio"} {
			if v, _ := r[f].(float64); v <= 0 {
				t.Errorf("row %v: %s is %v", r, f, r[f])
			}
		}
	}
	if !slices.Equal(keys, []string{"RSA-2048", "P-256"}) {
		t.Errorf("rows for %v, want RSA-2048 and P-256", keys)
	}
	if !strings.Contains(stderr.String(), "P-256 sign c=16 tresor") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("P-256 sign c=16")) {
		t.Errorf("svg: %v\n%.300s", err, b)
	}
}
