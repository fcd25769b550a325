package location_test

import (
	"testing"

	"tresor/internal/location"
	"tresor/internal/pkgdoc"
)

func TestEqual(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want bool
	}{
		"same":               {"eastus2", "eastus2", true},
		"display name":       {"East US 2", "eastus2", true},
		"upper case":         {"EASTUS2", "eastus2", true},
		"tab and spaces":     {" East\tUS 2 ", "eastus2", true},
		"other region":       {"East US", "eastus2", false},
		"dash is no space":   {"east-us-2", "eastus2", false},
		"empty":              {"", "eastus2", false},
		"non-Azure names":    {"Local", "local", true},
		"prefix is no match": {"eastus", "eastus2", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := location.Equal(tc.a, tc.b); got != tc.want {
				t.Fatalf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestDisplayName(t *testing.T) {
	tests := map[string]struct {
		name, want string
		ok         bool
	}{
		"eastus":      {"eastus", "East US", true},
		"eastus2":     {"eastus2", "East US 2", true},
		"westus2":     {"westus2", "West US 2", true},
		"westeurope":  {"westeurope", "West Europe", true},
		"northeurope": {"northeurope", "North Europe", true},
		"uksouth":     {"uksouth", "UK South", true},
		"any case":    {"UKSouth", "UK South", true},
		"not Azure":   {"local", "", false},
		"empty":       {"", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := location.DisplayName(tc.name)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("DisplayName(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestDisplayNamesRoundTrip checks the table: every display name
// normalizes to its region's name, as ARM maps one to the other.
func TestDisplayNamesRoundTrip(t *testing.T) {
	for _, name := range []string{"eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus",
		"southcentralus", "westcentralus", "northeurope", "westeurope", "uksouth", "ukwest", "francecentral",
		"germanywestcentral", "swedencentral", "switzerlandnorth", "norwayeast", "japaneast", "australiaeast",
		"southeastasia", "eastasia", "centralindia", "canadacentral", "brazilsouth", "koreacentral", "uaenorth"} {
		d, ok := location.DisplayName(name)
		if !ok || location.Normalize(d) != name {
			t.Errorf("%s: display name %q (%v) does not normalize to it", name, d, ok)
		}
	}
}

func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }
