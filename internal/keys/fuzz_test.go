package keys

import (
	"math/big"
	"regexp"
	"testing"
	"time"
)

// FuzzParseDuration checks ParseDuration against an exact computation in
// big integers: an accepted duration is the sum of its parts, between 0 and
// 100 years; a well-formed one that is refused exceeds 100 years.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"P90D", "P1Y2M3DT4H5M6S", "PT12H", "P213532D", "P100Y", "P100Y1D", "PT9223372037S", "P2147483647Y", "P", "P1DT", "P-1D"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)
	units := []int64{365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1}
	limit := big.NewInt(int64(MaxPolicyDuration / time.Second))
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		m := re.FindStringSubmatch(s)
		if m == nil || s == "P" || s[len(s)-1] == 'T' {
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error", s, d)
			}
			return
		}
		sum := new(big.Int)
		for i, u := range units {
			if m[i+1] == "" {
				continue
			}
			n, _ := new(big.Int).SetString(m[i+1], 10)
			sum.Add(sum, n.Mul(n, big.NewInt(u)))
		}
		if sum.Cmp(limit) > 0 {
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error (%s s is over the bound)", s, d, sum)
			}
			return
		}
		if err != nil || int64(d/time.Second) != sum.Int64() || d%time.Second != 0 {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %s s", s, d, err, sum)
		}
	})
}
