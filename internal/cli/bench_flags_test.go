package cli

import (
	"slices"
	"strings"
	"testing"

	"tresor/internal/bench"
)

func TestParseBenchKeys(t *testing.T) {
	tests := map[string]struct {
		in      []string
		want    []string
		wantErr string
	}{
		"default is all":     {nil, nil, ""},
		"two":                {[]string{"RSA-2048", "P-256"}, []string{"RSA-2048", "P-256"}, ""},
		"table order, dedup": {[]string{"p-256", "rsa-2048", "P-256"}, []string{"RSA-2048", "P-256"}, ""},
		"aes modes":          {[]string{"AES-256-KW", "aes-256-gcm"}, []string{"AES-256-GCM", "AES-256-KW"}, ""},
		"spaces":             {[]string{" P-384 "}, []string{"P-384"}, ""},
		"unknown":            {[]string{"RSA-1024"}, nil, `unknown key type "RSA-1024": choose from RSA-2048,`},
		"bare AES":           {[]string{"AES-256"}, nil, `unknown key type "AES-256"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseBenchKeys(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			want := tc.want
			if want == nil {
				for _, s := range bench.KeySpecs {
					want = append(want, s.Name)
				}
			}
			if !slices.Equal(names, want) {
				t.Errorf("got %v, want %v", names, want)
			}
		})
	}
}

func TestParseBenchOps(t *testing.T) {
	tests := map[string]struct {
		in      []string
		want    []string
		wantErr string
	}{
		"default":  {nil, append([]string{"empty"}, bench.Ops...), ""},
		"one":      {[]string{"sign"}, []string{"sign"}, ""},
		"ordered":  {[]string{"unwrap", "SIGN", "empty", "sign"}, []string{"empty", "sign", "unwrap"}, ""},
		"unknown":  {[]string{"sing"}, nil, `unknown operation "sing": choose from empty, create, get, sign`},
		"wrapkey":  {[]string{"wrapkey"}, nil, `unknown operation "wrapkey"`},
		"empty op": {[]string{""}, nil, `unknown operation ""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseBenchOps(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseBenchConcurrency(t *testing.T) {
	tests := map[string]struct {
		in      []int
		want    []int
		wantErr string
	}{
		"default": {[]int{1, 16, 64}, []int{1, 16, 64}, ""},
		"order":   {[]int{64, 1}, []int{64, 1}, ""},
		"dedup":   {[]int{16, 16}, []int{16}, ""},
		"none":    {nil, nil, "give at least one"},
		"zero":    {[]int{0}, nil, "0 is out of range: 1 to 1024"},
		"huge":    {[]int{1, 5000}, nil, "5000 is out of range"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseBenchConcurrency(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}
