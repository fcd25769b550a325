package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"tresor/internal/keys"
)

// TestKeyListPaging: pages of keys and deleted keys follow the order the
// store keeps (names without case), so names that differ in case from
// their order are each listed once, whatever the page size.
func TestKeyListPaging(t *testing.T) {
	d := newDrill(t)
	d.create("pages")
	d.activate("pages", "sd1", "sd2", "sd3")
	ctx := context.Background()
	in, _ := d.s.Instances.Get(ctx, "pages")
	names := []string{"Bravo", "alpha", "Charlie", "delta", "Echo", "zulu", "Yankee"}
	for _, n := range append(slices.Clone(names), "gone-A", "Gone-b") {
		if _, err := d.s.Keys.Create(ctx, in, n, keys.CreateParams{Kty: "oct-HSM", Size: 128}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"gone-A", "Gone-b"} {
		if _, err := d.s.Keys.Delete(ctx, in, n); err != nil {
			t.Fatal(err)
		}
	}
	list := func(path string, max string) []string {
		t.Helper()
		var got []string
		next := d.url("pages", path+"?maxresults="+max)
		for pages := 0; next != ""; pages++ {
			code, _, body := d.c.do("GET", next, d.hsm, nil)
			if code != 200 || pages > 20 {
				t.Fatalf("page %d: %d %s", pages, code, body)
			}
			var page struct {
				Value []struct {
					Kid string `json:"kid"`
				} `json:"value"`
				NextLink *string `json:"nextLink"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Value {
				got = append(got, v.Kid[strings.LastIndex(v.Kid, "/")+1:])
			}
			next = ""
			if page.NextLink != nil {
				next = *page.NextLink
			}
		}
		return got
	}
	want := []string{"alpha", "Bravo", "Charlie", "delta", "Echo", "Yankee", "zulu"}
	for _, max := range []string{"1", "2", "3", "25"} {
		if got := list("/keys", max); !slices.Equal(got, want) {
			t.Errorf("keys in pages of %s: %v, want %v", max, got, want)
		}
		if got := list("/deletedkeys", max); !slices.Equal(got, []string{"gone-A", "Gone-b"}) {
			t.Errorf("deleted keys in pages of %s: %v", max, got)
		}
	}
}
