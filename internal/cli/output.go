package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmespath/go-jmespath"
)

// query is a compiled --query expression.
type query struct {
	expr string
	jp   *jmespath.JMESPath
}

func compileQuery(expr string) (*query, error) {
	jp, err := jmespath.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid --query %q: %v", expr, err)
	}
	return &query{expr: expr, jp: jp}, nil
}

// row is a table row whose columns keep their order (what a table
// transformer returns, like az's OrderedDict).
type row []cell

type cell struct {
	key string
	val any
}

// tableFunc turns a result, as generic JSON, into what -o table prints
// (usually []row), when no --query is active (as in az).
type tableFunc func(v any) any

// print writes v in the run's output format.
func (a *app) print(v any, table tableFunc) error {
	return render(a.env.Stdout, v, a.output, a.compiled, table)
}

// render writes v (any JSON-marshalable value) to w in format, after
// applying q (if not nil). A null result prints nothing, as in az.
func render(w io.Writer, v any, format string, q *query, table tableFunc) error {
	g, err := toGeneric(v)
	if err != nil {
		return err
	}
	addResourceGroup(g)
	if q != nil {
		g, err = q.jp.Search(toFloats(g))
		if err != nil {
			return fmt.Errorf("--query %q: %v", q.expr, err)
		}
	}
	if g == nil {
		return nil
	}
	var buf bytes.Buffer
	switch format {
	case "json", "":
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(g); err != nil {
			return err
		}
	case "table":
		if table != nil && q == nil {
			g = table(g)
		}
		if err := writeTable(&buf, g); err != nil {
			return err
		}
	case "tsv":
		writeTSV(&buf, g)
	case "none":
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// toGeneric turns v into generic JSON (map[string]any, []any, string,
// json.Number, bool, nil).
func toGeneric(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	return g, nil
}

// toFloats turns the json.Numbers of g into float64s, which JMESPath
// compares and computes with.
func toFloats(g any) any {
	switch v := g.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = toFloats(x)
		}
	case []any:
		for i, x := range v {
			v[i] = toFloats(x)
		}
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return f
		}
	}
	return g
}

// addResourceGroup adds "resourceGroup", taken from "id", to every object
// that has an ARM id with a resource group and no such key, as az does.
func addResourceGroup(g any) {
	switch v := g.(type) {
	case []any:
		for _, x := range v {
			addResourceGroup(x)
		}
	case map[string]any:
		has := false
		for k := range v {
			if strings.EqualFold(k, "resourceGroup") {
				has = true
			}
		}
		if id, ok := v["id"].(string); ok && !has {
			if parts := strings.Split(id, "/"); len(parts) > 4 && parts[3] == "resourceGroups" {
				v["resourceGroup"] = parts[4]
			}
		}
		for k, x := range v {
			if k != "sourceVault" {
				addResourceGroup(x)
			}
		}
	}
}

// skipKeys are left out of automatic tables, as in az.
var skipKeys = map[string]bool{"id": true, "type": true, "etag": true}

// tableRow makes an automatic table row of an item, as az does: an object's
// scalar fields (keys sorted, capitalized), a list's items as Column1…, a
// scalar as Result.
func tableRow(item any) row {
	switch v := item.(type) {
	case row:
		return v
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var r row
		for _, k := range keys {
			x := v[k]
			if skipKeys[k] || x == nil {
				continue
			}
			switch x.(type) {
			case map[string]any, []any:
				continue
			}
			r = append(r, cell{key: capitalize(k), val: x})
		}
		return r
	case []any:
		var r row
		for i, x := range v {
			r = append(r, cell{key: fmt.Sprintf("Column%d", i+1), val: x})
		}
		return r
	default:
		return row{{key: "Result", val: v}}
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

// writeTable writes g as az's "simple" table: a header, a rule of dashes,
// columns two spaces apart, numbers right-aligned.
func writeTable(w io.Writer, g any) error {
	var items []any
	switch v := g.(type) {
	case []any:
		items = v
	case []row:
		for _, r := range v {
			items = append(items, r)
		}
	default:
		items = []any{g}
	}
	if len(items) == 0 {
		return nil
	}
	var cols []string
	index := map[string]int{}
	rows := make([]map[string]string, len(items))
	numeric := map[string]bool{}
	for i, it := range items {
		rows[i] = map[string]string{}
		for _, c := range tableRow(it) {
			if _, ok := index[c.key]; !ok {
				index[c.key] = len(cols)
				cols = append(cols, c.key)
				numeric[c.key] = true
			}
			if c.val == nil {
				continue
			}
			rows[i][c.key] = pyStr(c.val)
			if !isNumber(c.val) {
				numeric[c.key] = false
			}
		}
	}
	if len(cols) == 0 {
		return errors.New("table output unavailable for this result: use --query to select fields, or -o json")
	}
	width := make([]int, len(cols))
	for j, c := range cols {
		width[j] = utf8.RuneCountInString(c)
		for _, r := range rows {
			width[j] = max(width[j], utf8.RuneCountInString(r[c]))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for j, s := range cells {
			if j > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[j]-utf8.RuneCountInString(s))
			if numeric[cols[j]] {
				b.WriteString(pad + s)
			} else {
				b.WriteString(s + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(cols)
	dashes := make([]string, len(cols))
	for j := range cols {
		dashes[j] = strings.Repeat("-", width[j])
	}
	line(dashes)
	for _, r := range rows {
		cells := make([]string, len(cols))
		for j, c := range cols {
			cells[j] = r[c]
		}
		line(cells)
	}
	return nil
}

// writeTSV writes g as az's tsv: one line per item of a list (or for g),
// an object's values in key order, tab-separated; nested lists print their
// length and nested objects nothing.
func writeTSV(w io.Writer, g any) {
	items, ok := g.([]any)
	if !ok {
		items = []any{g}
	}
	for _, it := range items {
		var fields []string
		switch v := it.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fields = append(fields, tsvValue(v[k]))
			}
		case []any:
			for _, x := range v {
				fields = append(fields, tsvValue(x))
			}
		case bool:
			fields = []string{strconv.FormatBool(v)}
		default:
			fields = []string{tsvValue(v)}
		}
		fmt.Fprintln(w, strings.Join(fields, "\t"))
	}
}

func tsvValue(v any) string {
	switch x := v.(type) {
	case []any:
		return strconv.Itoa(len(x))
	case map[string]any:
		return ""
	}
	return pyStr(v)
}

// pyStr formats a scalar as az (Python's str) does.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case json.Number:
		return x.String()
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e16 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func isNumber(v any) bool {
	switch v.(type) {
	case json.Number, float64:
		return true
	}
	return false
}
