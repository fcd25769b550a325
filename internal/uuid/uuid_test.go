package uuid_test

import (
	"testing"

	"tresor/internal/pkgdoc"
	"tresor/internal/uuid"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := uuid.New()
		if !uuid.Valid(u) || u[14] != '4' || !(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b') {
			t.Fatalf("%s is not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("%s twice", u)
		}
		seen[u] = true
	}
}

func TestValid(t *testing.T) {
	tests := map[string]bool{
		"a1d6fd6c-3e65-49c9-b323-623b86d39bf2":  true,
		"A1D6FD6C-3E65-49C9-B323-623B86D39BF2":  true,
		"a1d6fd6c3e6549c9b323623b86d39bf2":      false,
		"a1d6fd6c-3e65-49c9-b323-623b86d39bf":   false,
		"g1d6fd6c-3e65-49c9-b323-623b86d39bf2":  false,
		"":                                      false,
		" a1d6fd6c-3e65-49c9-b323-623b86d39bf2": false,
	}
	for s, want := range tests {
		if got := uuid.Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestPackageDoc(t *testing.T) { pkgdoc.Check(t, ".") }
