package bench_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"tresor/internal/bench"
	"tresor/internal/pkgdoc"
	"tresor/internal/wire"
)

func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := map[string]struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		"empty":           {nil, 50, 0},
		"one value p50":   {ms(7), 50, 7 * time.Millisecond},
		"one value p99":   {ms(7), 99, 7 * time.Millisecond},
		"two values p50":  {ms(1, 2), 50, 1 * time.Millisecond},
		"two values p51":  {ms(1, 2), 51, 2 * time.Millisecond},
		"four values p50": {ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		"four values p75": {ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		"four values max": {ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		"hundred p50":     {hundred, 50, 50 * time.Millisecond},
		"hundred p90":     {hundred, 90, 90 * time.Millisecond},
		"hundred p99":     {hundred, 99, 99 * time.Millisecond},
		"hundred p99.9":   {hundred, 99.9, 100 * time.Millisecond},
		"tiny p":          {hundred, 0.001, 1 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := bench.Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

// TestRun: every call is counted once, failed calls are errors with the
// first one kept, warm-up calls are not counted, and the workers use
// their own indexes. It asserts no timing beyond "the run ended".
func TestRun(t *testing.T) {
	seen := make([]bool, 4)
	fail := errors.New("odd call")
	res := bench.Run(context.Background(), bench.Config{Concurrency: 4, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond},
		func(_ context.Context, w int) error {
			seen[w] = true // each worker writes its own slot only
			if w == 3 {
				return fail
			}
			time.Sleep(time.Millisecond)
			return nil
		})
	for w, ok := range seen {
		if !ok {
			t.Errorf("worker %d never ran", w)
		}
	}
	if res.Ops == 0 || res.Errors == 0 || !errors.Is(res.FirstError, fail) {
		t.Fatalf("ops %d errors %d first %v", res.Ops, res.Errors, res.FirstError)
	}
	if res.OpsPerSec <= 0 || res.P50 <= 0 || res.P50 > res.P90 || res.P90 > res.P99 || res.P99 > res.Max {
		t.Fatalf("rates and percentiles out of order: %+v", res)
	}
	// Cancelled: Run returns with what it has.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = bench.Run(ctx, bench.Config{Concurrency: 2, Duration: time.Hour}, func(context.Context, int) error { return nil })
	if res.Elapsed > time.Minute {
		t.Fatalf("a cancelled run took %v", res.Elapsed)
	}
}

// TestWorkloads: for every key type and operation, the in-process
// operation works and the bare server's answer to the workload's own
// request is what Tresor would answer (a signature that verifies, the
// plaintext back, a key of the right type).
func TestWorkloads(t *testing.T) {
	for _, s := range bench.KeySpecs {
		if s.Name == "RSA-3072" || s.Name == "RSA-4096" {
			continue // the RSA-2048 case covers the code; their keys take seconds to make
		}
		t.Run(s.Name, func(t *testing.T) {
			k, err := bench.NewKey(s)
			if err != nil {
				t.Fatal(err)
			}
			again, err := bench.KeyFromJWK(s, k.JWK())
			if err != nil || !reflect.DeepEqual(again.JWK(), k.JWK()) {
				t.Fatalf("the key does not survive its JWK: %v", err)
			}
			for _, op := range bench.Ops {
				w, err := k.Workload(op, "bench-key")
				if !s.Supports(op) {
					if err == nil {
						t.Errorf("%s: no error", op)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				if !strings.HasPrefix(w.Path, "/keys/bench-key") || !strings.HasSuffix(w.Path, "?api-version="+bench.KeysAPIVersion) {
					t.Errorf("%s: path %q", op, w.Path)
				}
				if err := w.Local(); err != nil {
					t.Errorf("%s in process: %v", op, err)
				}
				out, err := w.Serve(w.Body)
				if err != nil {
					t.Fatalf("%s served: %v", op, err)
				}
				checkAnswer(t, s, op, w, out)
			}
		})
	}
	if out, err := bench.EmptyWorkload().Serve(nil); err != nil || string(out) != "{}" {
		t.Errorf("empty: %q %v", out, err)
	}
	if err := bench.EmptyWorkload().Local(); err != nil {
		t.Errorf("empty in process: %v", err)
	}
}

func checkAnswer(t *testing.T, s bench.KeySpec, op string, w *bench.Workload, out []byte) {
	t.Helper()
	var res struct {
		Value any             `json:"value"`
		Key   wire.JSONWebKey `json:"key"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v: %s", op, err, out)
	}
	var req wire.KeyOperationsParameters
	_ = json.Unmarshal(w.Body, &req)
	switch op {
	case bench.OpCreate, bench.OpGet:
		if res.Key.Kty == "" || res.Key.D != "" || res.Key.K != "" {
			t.Errorf("%s: key %+v", op, res.Key)
		}
	case bench.OpVerify:
		if res.Value != true {
			t.Errorf("verify: %s", out)
		}
	case bench.OpDecrypt, bench.OpUnwrap:
		// The answer is the plaintext the workload encrypted; ask the
		// matching encrypt's workload for it.
		plain, _ := base64.RawURLEncoding.DecodeString(res.Value.(string))
		want := map[string]int{bench.OpDecrypt: s.Plaintext, bench.OpUnwrap: 32}[op]
		if len(plain) != want {
			t.Errorf("%s: %d bytes back, want %d", op, len(plain), want)
		}
	default:
		if v, _ := res.Value.(string); v == "" {
			t.Errorf("%s: no value: %s", op, out)
		}
	}
	if _, err := w.Serve([]byte("{")); err == nil && op != bench.OpGet {
		t.Errorf("%s: a broken body is served", op)
	}
}

func sampleRows() []bench.Row {
	res := bench.Result{OpsPerSec: 1234.56, P50: 1500 * time.Microsecond, P90: 2 * time.Millisecond, P99: 4 * time.Millisecond, Max: 9 * time.Millisecond}
	return []bench.Row{
		bench.NewRow("-", "empty", 16, bench.Result{OpsPerSec: 8000}, 0, 8000),
		bench.NewRow("RSA-2048", "sign", 16, res, 3000, 1300),
		bench.NewRow("P-256 <&>", "get", 1, bench.Result{}, 0, 0),
	}
}

func TestNewRow(t *testing.T) {
	r := sampleRows()[1]
	want := bench.Row{Key: "RSA-2048", Op: "sign", Concurrency: 16, OpsPerSec: 1234.6, P50Ms: 1.5, P99Ms: 4, Errors: 0,
		CryptoCeilingOpsPerSec: 3000, HTTPSCeilingOpsPerSec: 1300, Ratio: 0.95, P90Ms: 2, MaxMs: 9}
	if r != want {
		t.Fatalf("row %+v\nwant %+v", r, want)
	}
	// The JSON has exactly the fields.
	b, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	fields := []string{"key", "op", "concurrency", "opsPerSec", "p50Ms", "p99Ms", "errors", "cryptoCeilingOpsPerSec", "httpsCeilingOpsPerSec", "ratio"}
	if len(m) != len(fields) {
		t.Errorf("JSON %s: %d fields, want %d", b, len(m), len(fields))
	}
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			t.Errorf("JSON %s lacks %s", b, f)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := bench.WriteTable(&b, sampleRows()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"% https", "1235", "95%", "41%"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestWriteSVG: the chart is well-formed XML with one labelled bar per
// row, a mark per ceiling present, and escaped text.
func TestWriteSVG(t *testing.T) {
	tests := map[string]struct {
		rows        []bench.Row
		bars, marks int
	}{
		"sample": {sampleRows(), 3, 3}, // empty: https only; RSA: both; the zero row: none
		"none":   {nil, 0, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := bench.WriteSVG(&b, "title <x>", tc.rows); err != nil {
				t.Fatal(err)
			}
			dec := xml.NewDecoder(&b)
			var bars, marks int
			var texts []string
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("not XML: %v", err)
				}
				switch e := tok.(type) {
				case xml.StartElement:
					if e.Name.Local == "rect" {
						for _, a := range e.Attr {
							if a.Name.Local == "fill" && a.Value == "#4a7f3f" {
								bars++
							}
							if a.Name.Local == "width" && a.Value == "3" {
								marks++
							}
						}
					}
				case xml.CharData:
					texts = append(texts, string(e))
				}
			}
			bars-- // the legend's swatch
			marks -= 2
			if bars != tc.bars || marks != tc.marks {
				t.Errorf("%d bars and %d marks, want %d and %d", bars, marks, tc.bars, tc.marks)
			}
			all := strings.Join(texts, "|")
			if !strings.Contains(all, "title <x>") {
				t.Errorf("no title in %q", all)
			}
			for _, r := range tc.rows {
				if !strings.Contains(all, r.Key+" "+r.Op) {
					t.Errorf("no label for %s %s in %q", r.Key, r.Op, all)
				}
			}
		})
	}
}
