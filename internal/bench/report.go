package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one measured cell, as `tresor bench --json` prints it: an
// operation on a key type at one concurrency, with both ceilings measured
// in the same run. Ratio is OpsPerSec / HTTPSCeilingOpsPerSec (0 without
// a ceiling).
type Row struct {
	Key                    string  `json:"key"`
	Op                     string  `json:"op"`
	Concurrency            int     `json:"concurrency"`
	OpsPerSec              float64 `json:"opsPerSec"`
	P50Ms                  float64 `json:"p50Ms"`
	P99Ms                  float64 `json:"p99Ms"`
	Errors                 int64   `json:"errors"`
	CryptoCeilingOpsPerSec float64 `json:"cryptoCeilingOpsPerSec"`
	HTTPSCeilingOpsPerSec  float64 `json:"httpsCeilingOpsPerSec"`
	Ratio                  float64 `json:"ratio"`

	// Not in the JSON: the table's extra columns. ServerCPUUs and
	// BareCPUUs are the CPU time (user and system, all threads) that the
	// Tresor and the bare server process spent per successful request
	// while measured; 0 when unknown.
	P90Ms       float64 `json:"-"`
	MaxMs       float64 `json:"-"`
	ServerCPUUs float64 `json:"-"`
	BareCPUUs   float64 `json:"-"`
}

// NewRow makes the row of a Tresor result and its two ceilings' rates.
func NewRow(key, op string, concurrency int, r Result, cryptoCeiling, httpsCeiling float64) Row {
	row := Row{Key: key, Op: op, Concurrency: concurrency, OpsPerSec: round(r.OpsPerSec, 1),
		P50Ms: ms(r.P50), P90Ms: ms(r.P90), P99Ms: ms(r.P99), MaxMs: ms(r.Max), Errors: r.Errors,
		CryptoCeilingOpsPerSec: round(cryptoCeiling, 1), HTTPSCeilingOpsPerSec: round(httpsCeiling, 1)}
	if httpsCeiling > 0 {
		row.Ratio = round(r.OpsPerSec/httpsCeiling, 3)
	}
	return row
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// WriteTable writes rows as an aligned text table: the rate, latencies and
// errors, and the rate as a fraction of each ceiling.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "key\top\tconc\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tcrypto ops/s\t% crypto\thttps ops/s\t% https\tcpu µs/op\tbare cpu µs/op\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Key, r.Op, r.Concurrency, r.OpsPerSec, r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.Errors,
			rate(r.CryptoCeilingOpsPerSec), percent(r.OpsPerSec, r.CryptoCeilingOpsPerSec),
			rate(r.HTTPSCeilingOpsPerSec), percent(r.OpsPerSec, r.HTTPSCeilingOpsPerSec), rate(r.ServerCPUUs), rate(r.BareCPUUs))
	}
	return tw.Flush()
}

func rate(x float64) string {
	if x <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", x)
}

func percent(x, of float64) string {
	if of <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x/of)
}

// SVG layout, in pixels.
const (
	svgWidth     = 960
	svgLabelW    = 220 // the row labels on the left
	svgRightPad  = 30
	svgRowH      = 22
	svgBarH      = 14
	svgTopPad    = 70 // title and legend
	svgBottomPad = 40 // the axis
)

// WriteSVG writes rows as a horizontal bar chart: one bar per row (its
// ops/s, on a logarithmic axis), a blue mark at the bare HTTPS server's
// rate and a red mark at the in-process crypto rate. title heads it.
func WriteSVG(w io.Writer, title string, rows []Row) error {
	lo, hi := math.Inf(1), 0.0
	for _, r := range rows {
		for _, v := range []float64{r.OpsPerSec, r.CryptoCeilingOpsPerSec, r.HTTPSCeilingOpsPerSec} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	// Whole decades around the data.
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	plotW := float64(svgWidth - svgLabelW - svgRightPad)
	x := func(v float64) float64 {
		if v <= 0 {
			return svgLabelW
		}
		f := (math.Log10(v) - dlo) / (dhi - dlo)
		return svgLabelW + math.Max(0, math.Min(1, f))*plotW
	}
	height := svgTopPad + len(rows)*svgRowH + svgBottomPad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", 10, html.EscapeString(title))
	// Legend.
	fmt.Fprintf(&b, `<rect x="10" y="36" width="14" height="10" fill="#4a7f3f"/><text x="30" y="45">Tresor ops/s</text>`+"\n")
	fmt.Fprintf(&b, `<rect x="130" y="33" width="3" height="16" fill="#1f5fbf"/><text x="140" y="45">bare Go HTTPS server (same key, client, concurrency)</text>`+"\n")
	fmt.Fprintf(&b, `<rect x="470" y="33" width="3" height="16" fill="#c0392b"/><text x="480" y="45">in-process crypto, all cores</text>`+"\n")
	// Grid: a line per decade.
	axisY := svgTopPad + len(rows)*svgRowH
	for d := dlo; d <= dhi; d++ {
		gx := x(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", gx, svgTopPad-6, gx, axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx, axisY+16, decade(d))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">operations per second (log scale)</text>`+"\n",
		svgLabelW+plotW/2, axisY+32)
	for i, r := range rows {
		y := svgTopPad + i*svgRowH
		label := fmt.Sprintf("%s %s c=%d", r.Key, r.Op, r.Concurrency)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", svgLabelW-8, y+svgBarH-2, html.EscapeString(label))
		bw := x(r.OpsPerSec) - svgLabelW
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="#4a7f3f"><title>%.0f ops/s</title></rect>`+"\n",
			svgLabelW, y, bw, svgBarH, r.OpsPerSec)
		mark := func(v float64, color, what string) {
			if v > 0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="3" height="%d" fill="%s"><title>%s %.0f ops/s</title></rect>`+"\n",
					x(v)-1.5, y-3, svgBarH+6, color, what, v)
			}
		}
		mark(r.HTTPSCeilingOpsPerSec, "#1f5fbf", "bare HTTPS")
		mark(r.CryptoCeilingOpsPerSec, "#c0392b", "crypto")
		if r.HTTPSCeilingOpsPerSec > 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", svgLabelW+bw+6, y+svgBarH-2,
				percent(r.OpsPerSec, r.HTTPSCeilingOpsPerSec))
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// decade labels 10^d: 1, 10, 100, 1k, 10k, …
func decade(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.0fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}
