package keys

import (
	"errors"
	"testing"
	"time"

	"tresor/internal/barrier"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	tests := map[string]struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		"days":         {in: "P90D", want: 90 * day},
		"weeks":        {in: "P2W", want: 14 * day},
		"months":       {in: "P1M", want: 30 * day},
		"years":        {in: "P1Y", want: 365 * day},
		"mixed":        {in: "P1Y2M3DT4H5M6S", want: 365*day + 60*day + 3*day + 4*time.Hour + 5*time.Minute + 6*time.Second},
		"time only":    {in: "PT12H", want: 12 * time.Hour},
		"empty":        {in: "", wantErr: true},
		"bare P":       {in: "P", wantErr: true},
		"trailing T":   {in: "P1DT", wantErr: true},
		"no P":         {in: "90D", wantErr: true},
		"negative":     {in: "P-1D", wantErr: true},
		"fraction":     {in: "P1.5D", wantErr: true},
		"wrong order":  {in: "P1D2Y", wantErr: true},
		"huge":         {in: "P99999999999D", wantErr: true},
		"lower case d": {in: "P1d", wantErr: true},
		// Durations that overflow int64 nanoseconds, and durations past the
		// 100-year bound.
		"overflow days":    {in: "P213532D", wantErr: true},
		"overflow sum":     {in: "P200Y200000D", wantErr: true},
		"overflow hours":   {in: "PT2562048H", wantErr: true},
		"overflow seconds": {in: "PT9223372037S", wantErr: true},
		"100 years":        {in: "P100Y", want: 100 * 365 * day},
		"100 years 1 day":  {in: "P100Y1D", wantErr: true},
		"36500 days":       {in: "P36500D", want: 36500 * day},
		"36501 days":       {in: "P36501D", wantErr: true},
		"max int32 years":  {in: "P2147483647Y", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	rotate := func(after, before string) LifetimeAction {
		return LifetimeAction{TimeAfterCreate: after, TimeBeforeExpiry: before, Type: "rotate"}
	}
	tests := map[string]struct {
		p  RotationPolicy
		ok bool
	}{
		"rotate after create":            {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{rotate("P30D", "")}}, true},
		"rotate before expiry":           {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{rotate("", "P30D")}}, true},
		"notify only":                    {RotationPolicy{ExpiryTime: "P28D", Actions: []LifetimeAction{{TimeBeforeExpiry: "P7D", Type: "Notify"}}}, true},
		"no expiry, after create":        {RotationPolicy{Actions: []LifetimeAction{rotate("P30D", "")}}, true},
		"expiry under 28 days":           {RotationPolicy{ExpiryTime: "P27D"}, false},
		"expiry overflows":               {RotationPolicy{ExpiryTime: "P213532D"}, false},
		"expiry over 100 years":          {RotationPolicy{ExpiryTime: "P101Y"}, false},
		"after create overflows":         {RotationPolicy{Actions: []LifetimeAction{rotate("P213532D", "")}}, false},
		"before expiry overflows":        {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{rotate("", "P213532D")}}, false},
		"both triggers":                  {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{rotate("P30D", "P30D")}}, false},
		"no trigger":                     {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{rotate("", "")}}, false},
		"before expiry without expiry":   {RotationPolicy{Actions: []LifetimeAction{rotate("", "P30D")}}, false},
		"after create too close":         {RotationPolicy{ExpiryTime: "P30D", Actions: []LifetimeAction{rotate("P29D", "")}}, false},
		"after create under 7 days":      {RotationPolicy{Actions: []LifetimeAction{rotate("P6D", "")}}, false},
		"unknown action":                 {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{{TimeAfterCreate: "P30D", Type: "Delete"}}}, false},
		"two rotate actions":             {RotationPolicy{ExpiryTime: "P90D", Actions: []LifetimeAction{rotate("P30D", ""), rotate("P40D", "")}}, false},
		"bad duration":                   {RotationPolicy{ExpiryTime: "ninety days"}, false},
		"before expiry longer than life": {RotationPolicy{ExpiryTime: "P30D", Actions: []LifetimeAction{rotate("", "P29D")}}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := tc.p
			p.Actions = append([]LifetimeAction(nil), p.Actions...)
			if err := p.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func testRoot(t testing.TB) *barrier.RootKey {
	t.Helper()
	r, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func samplePayload() backupPayload {
	return backupPayload{
		Name:   "k1",
		Record: keyRecord{Name: "k1", Versions: []string{"v1", "v2"}, Current: "v2"},
		Versions: []versionRecord{
			{Version: "v1", Material: []byte{1}, Enabled: true},
			{Version: "v2", Material: []byte{2}, Enabled: true},
		},
	}
}

func TestBackupRoundTrip(t *testing.T) {
	root := testRoot(t)
	blob, err := sealBackup(root, samplePayload())
	if err != nil {
		t.Fatal(err)
	}
	p, err := openBackup(root, blob)
	if err != nil || p.Name != "k1" || len(p.Versions) != 2 {
		t.Fatalf("openBackup: %+v, %v", p, err)
	}
	if _, err := openBackup(testRoot(t), blob); !errors.Is(err, ErrBackupOtherDomain) {
		t.Fatalf("another root: %v", err)
	}
	for i := range blob {
		bad := append([]byte(nil), blob...)
		bad[i] ^= 0x20
		if _, err := openBackup(root, bad); err == nil {
			// Flipping case of a JSON key letter may still parse the same
			// document only if the field names are case-insensitive; the
			// ciphertext and the root id are not.
			var p2 backupPayload
			if p2, err = openBackup(root, bad); err == nil && p2.Name != "k1" {
				t.Fatalf("a damaged backup (byte %d) opened to something else", i)
			}
		}
	}
	// A payload whose versions disagree with its record is refused.
	p = samplePayload()
	p.Record.Current = "v9"
	blob, _ = sealBackup(root, p)
	if _, err := openBackup(root, blob); !errors.Is(err, ErrBackupMalformed) {
		t.Fatalf("inconsistent payload: %v", err)
	}
}

// FuzzOpenBackup: any bytes either open to a consistent payload or fail
// with one of the two sentinel errors; never a panic.
func FuzzOpenBackup(f *testing.F) {
	root, err := barrier.RootKeyFromBytes(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	good, err := sealBackup(root, samplePayload())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"tresor.keybackup/v1"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := openBackup(root, data)
		if err != nil {
			if !errors.Is(err, ErrBackupMalformed) && !errors.Is(err, ErrBackupOtherDomain) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if p.Name != "" || p.Versions != nil {
				t.Fatal("an error came with a payload")
			}
			return
		}
		if p.validate() != nil {
			t.Fatal("an opened payload is not consistent")
		}
	})
}
