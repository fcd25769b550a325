package cli

import (
	"bytes"
	"testing"
)

// sampleHSM is a managed HSM as the server answers it.
var sampleHSM = map[string]any{
	"id":       "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault/managedHSMs/hsm1",
	"name":     "hsm1",
	"type":     "Microsoft.KeyVault/managedHSMs",
	"location": "local",
	"tags":     map[string]string{"env": "dev"},
	"properties": map[string]any{
		"provisioningState":         "Succeeded",
		"softDeleteRetentionInDays": 90,
		"enablePurgeProtection":     false,
		"initialAdminObjectIds":     []string{"a", "b"},
		"securityDomainProperties":  map[string]any{"activationStatus": "NotActivated"},
	},
}

func TestRender(t *testing.T) {
	tests := map[string]struct {
		v      any
		format string
		query  string
		table  tableFunc
		want   string
	}{
		"json sorted, 2-space, resourceGroup added": {
			v:      map[string]any{"name": "x", "id": "/subscriptions/s/resourceGroups/RG/providers/p/t/x", "count": 3, "url": "https://a/b?c=d&e"},
			format: "json",
			want: `{
  "count": 3,
  "id": "/subscriptions/s/resourceGroups/RG/providers/p/t/x",
  "name": "x",
  "resourceGroup": "RG",
  "url": "https://a/b?c=d&e"
}
`,
		},
		"json empty list":          {v: []string{}, format: "json", want: "[]\n"},
		"json null prints nothing": {v: nil, format: "json", want: ""},
		"query scalar json": {
			v: sampleHSM, format: "json", query: "properties.softDeleteRetentionInDays", want: "90\n",
		},
		"query on resourceGroup": {
			v: []any{sampleHSM}, format: "tsv", query: "[].resourceGroup", want: "rg1\n",
		},
		"query no match prints nothing": {v: sampleHSM, format: "json", query: "nothing", want: ""},
		"query filter numbers": {
			v: []map[string]any{{"n": "a", "d": 7}, {"n": "b", "d": 90}}, format: "tsv", query: "[?d > `10`].n", want: "b\n",
		},
		"tsv object values in key order": {
			v: map[string]any{"b": true, "a": "x", "c": []int{1, 2}, "d": map[string]any{"k": 1}, "e": nil}, format: "tsv",
			want: "x\tTrue\t2\t\tNone\n",
		},
		"tsv top-level bool":  {v: true, format: "tsv", want: "true\n"},
		"tsv list of strings": {v: []string{"a", "b"}, format: "tsv", want: "a\nb\n"},
		"tsv list of lists":   {v: [][]any{{"a", 1}, {"b", 2}}, format: "tsv", want: "a\t1\nb\t2\n"},
		"table generic": {
			v:      []map[string]any{{"displayName": "ops", "objectId": "o1", "regionAdmin": true, "id": "skipped"}, {"displayName": "longer name", "objectId": "o2", "regionAdmin": false}},
			format: "table",
			want: `DisplayName  ObjectId  RegionAdmin
-----------  --------  -----------
ops          o1        True
longer name  o2        False
`,
		},
		"table numbers right-aligned": {
			v:      []map[string]any{{"name": "a", "size": 7}, {"name": "b", "size": 1000}},
			format: "table",
			want: `Name  Size
----  ----
a        7
b     1000
`,
		},
		"table scalar": {v: "hello", format: "table", want: "Result\n------\nhello\n"},
		"table hsm transformer": {
			v: []any{sampleHSM}, format: "table", table: hsmTable,
			want: `Name  ResourceGroup  Location  ActivationStatus  ProvisioningState
----  -------------  --------  ----------------  -----------------
hsm1  rg1            local     NotActivated      Succeeded
`,
		},
		"table transformer off under query": {
			v: sampleHSM, format: "table", table: hsmTable, query: "{n: name, days: properties.softDeleteRetentionInDays}",
			want: "Days  N\n----  ----\n  90  hsm1\n",
		},
		"table empty list": {v: []any{}, format: "table", table: hsmTable, want: ""},
		"none":             {v: sampleHSM, format: "none", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var q *query
			if tc.query != "" {
				var err error
				if q, err = compileQuery(tc.query); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if err := render(&buf, tc.v, tc.format, q, tc.table); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := compileQuery("[?"); err == nil {
		t.Error("compileQuery accepted a broken expression")
	}
	var buf bytes.Buffer
	if err := render(&buf, map[string]any{"nested": map[string]any{"a": 1}}, "table", nil, nil); err == nil {
		t.Error("table of an object without scalar fields succeeded")
	}
}
