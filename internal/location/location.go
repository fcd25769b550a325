// Package location implements Azure Resource Manager's location names: the
// display names of Azure's public regions, and the comparison ARM applies to
// a location in a request ("East US 2", "eastus2" and "EASTUS2" name one
// location).
//
// Use [Equal] to compare a location a client sent with a region's name,
// [DisplayName] for the display name of an Azure region's name, and
// [Normalize] for the form a location is stored and compared in.
package location

import (
	"strings"
	"unicode"
)

// Normalize returns loc as ARM compares it: lower case, without spaces.
func Normalize(loc string) string {
	var b strings.Builder
	b.Grow(len(loc))
	for _, r := range loc {
		if unicode.IsSpace(r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// Equal reports whether a and b name the same location: equal once case
// and spaces are ignored.
func Equal(a, b string) bool { return Normalize(a) == Normalize(b) }

// DisplayName returns the display name of the Azure public region called
// name (any case, spaces ignored), for example "East US 2" for "eastus2",
// and whether name is one.
func DisplayName(name string) (string, bool) {
	d, ok := azureRegions[Normalize(name)]
	return d, ok
}

// azureRegions maps the names of Azure's public regions to their display
// names, as GET /subscriptions/{sub}/locations answers them.
var azureRegions = map[string]string{
	"australiacentral":   "Australia Central",
	"australiacentral2":  "Australia Central 2",
	"australiaeast":      "Australia East",
	"australiasoutheast": "Australia Southeast",
	"austriaeast":        "Austria East",
	"belgiumcentral":     "Belgium Central",
	"brazilsouth":        "Brazil South",
	"brazilsoutheast":    "Brazil Southeast",
	"canadacentral":      "Canada Central",
	"canadaeast":         "Canada East",
	"centralindia":       "Central India",
	"centralus":          "Central US",
	"chilecentral":       "Chile Central",
	"eastasia":           "East Asia",
	"eastus":             "East US",
	"eastus2":            "East US 2",
	"francecentral":      "France Central",
	"francesouth":        "France South",
	"germanynorth":       "Germany North",
	"germanywestcentral": "Germany West Central",
	"indonesiacentral":   "Indonesia Central",
	"israelcentral":      "Israel Central",
	"italynorth":         "Italy North",
	"japaneast":          "Japan East",
	"japanwest":          "Japan West",
	"jioindiacentral":    "Jio India Central",
	"jioindiawest":       "Jio India West",
	"koreacentral":       "Korea Central",
	"koreasouth":         "Korea South",
	"malaysiawest":       "Malaysia West",
	"mexicocentral":      "Mexico Central",
	"newzealandnorth":    "New Zealand North",
	"northcentralus":     "North Central US",
	"northeurope":        "North Europe",
	"norwayeast":         "Norway East",
	"norwaywest":         "Norway West",
	"polandcentral":      "Poland Central",
	"qatarcentral":       "Qatar Central",
	"southafricanorth":   "South Africa North",
	"southafricawest":    "South Africa West",
	"southcentralus":     "South Central US",
	"southeastasia":      "Southeast Asia",
	"southindia":         "South India",
	"spaincentral":       "Spain Central",
	"swedencentral":      "Sweden Central",
	"swedensouth":        "Sweden South",
	"switzerlandnorth":   "Switzerland North",
	"switzerlandwest":    "Switzerland West",
	"uaecentral":         "UAE Central",
	"uaenorth":           "UAE North",
	"uksouth":            "UK South",
	"ukwest":             "UK West",
	"westcentralus":      "West Central US",
	"westeurope":         "West Europe",
	"westindia":          "West India",
	"westus":             "West US",
	"westus2":            "West US 2",
	"westus3":            "West US 3",
}
