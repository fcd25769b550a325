package securitydomain

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// genCustodians returns n cached generated custodians.
func genCustodians(t testing.TB, n int) []Custodian {
	t.Helper()
	cs := make([]Custodian, n)
	for i := range cs {
		cs[i] = genCustodian(t, i)
	}
	return cs
}

func certsOf(cs []Custodian) []*Certificate {
	out := make([]*Certificate, len(cs))
	for i, c := range cs {
		out[i] = c.Cert
	}
	return out
}

func checkBlobsEqual(t *testing.T, got, want []Blob) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d blobs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Tag != want[i].Tag || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("blob %d = %q %x, want %q %x", i, got[i].Tag, got[i].Data, want[i].Tag, want[i].Data)
		}
	}
}

func TestBuildFileRoundTrip(t *testing.T) {
	cs := genCustodians(t, 3)
	blobs := tresorBlobs()
	data, err := BuildFile(blobs, certsOf(cs), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	// The JSON has the exact shape of the service's file (spec §2.3).
	var shape struct {
		EncData    json.RawMessage
		SharedKeys json.RawMessage
		Version    int `json:"version"`
	}
	if err := json.Unmarshal(data, &shape); err != nil || shape.Version != 2 {
		t.Fatalf("shape: %v, version %d", err, shape.Version)
	}
	if !bytes.HasPrefix(data, []byte(`{"EncData":{"data":[{"compact_jwe":"`)) ||
		!bytes.Contains(data, []byte(`],"kdf":"sp108_kdf"},"SharedKeys":{"enc_shares":[{"enc_key":"`)) ||
		!bytes.HasSuffix(data, []byte(`],"key_algorithm":"shamir_share","required":2},"version":2}`)) {
		t.Errorf("unexpected JSON layout: %.200s…", data)
	}
	for i, s := range f.Shares {
		if s.X5T256 != cs[i].Cert.Thumbprint() {
			t.Errorf("share %d: x5t_256 %s, want %s", i, s.X5T256, cs[i].Cert.Thumbprint())
		}
		// Share i has x = i+1 and is 64 bytes: a 32-byte master key.
		pt, err := DecryptRSA(cs[i].Key, s.EncKey)
		if err != nil || len(pt) != 64 || int(pt[1]>>1) != i+1 {
			t.Errorf("share %d: %d bytes, %v", i, len(pt), err)
		}
	}
	for _, pair := range [][]int{{0, 1}, {0, 2}, {1, 2}, {2, 0}, {0, 1, 2}} {
		t.Run(fmt.Sprint(pair), func(t *testing.T) {
			var sub []Custodian
			for _, i := range pair {
				sub = append(sub, cs[i])
			}
			got, err := f.Open(sub)
			if err != nil {
				t.Fatal(err)
			}
			checkBlobsEqual(t, got, blobs)
		})
	}
	for i := range cs {
		if got, err := f.Open(cs[i : i+1]); !errors.Is(err, ErrInsufficientShares) || got != nil {
			t.Errorf("custodian %d alone: %v", i, err)
		}
	}
}

func TestBuildFileQuorum3Of5(t *testing.T) {
	cs := genCustodians(t, 5)
	blobs := tresorBlobs()
	data, err := BuildFile(blobs, certsOf(cs), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Open([]Custodian{cs[4], cs[1], cs[2]}); err != nil {
		t.Fatal(err)
	} else {
		checkBlobsEqual(t, got, blobs)
	}
	if _, err := f.Open([]Custodian{cs[0], cs[3]}); !errors.Is(err, ErrInsufficientShares) {
		t.Errorf("two of 3 required: %v", err)
	}
}

func TestBuildFileValidation(t *testing.T) {
	cs := genCustodians(t, 10)
	extra := genCustodian(t, 10)
	certs := certsOf(cs)
	small := cachedRSAKey(t, "small", 1024)
	smallDER := selfSigned(t, "small", small)
	ecDER := genECCertDER(t)
	mismatch := &Certificate{DER: cs[0].Cert.DER, Public: cs[1].Cert.Public}
	tests := map[string]struct {
		blobs    []Blob
		certs    []*Certificate
		required int
	}{
		"2 certs":             {tresorBlobs(), certs[:2], 2},
		"11 certs":            {tresorBlobs(), append(append([]*Certificate(nil), certs...), extra.Cert), 2},
		"quorum 1":            {tresorBlobs(), certs[:3], 1},
		"quorum 0":            {tresorBlobs(), certs[:3], 0},
		"quorum above n":      {tresorBlobs(), certs[:3], 4},
		"duplicate cert":      {tresorBlobs(), []*Certificate{certs[0], certs[1], certs[0]}, 2},
		"1024-bit cert":       {tresorBlobs(), []*Certificate{certs[0], certs[1], {DER: smallDER, Public: &small.PublicKey}}, 2},
		"EC cert":             {tresorBlobs(), []*Certificate{certs[0], certs[1], {DER: ecDER}}, 2},
		"nil cert":            {tresorBlobs(), []*Certificate{certs[0], certs[1], nil}, 2},
		"junk DER":            {tresorBlobs(), []*Certificate{certs[0], certs[1], {DER: []byte("junk")}}, 2},
		"public/DER mismatch": {tresorBlobs(), []*Certificate{mismatch, certs[2], certs[3]}, 2},
		"no blobs":            {nil, certs[:3], 2},
		"empty tag":           {[]Blob{{Tag: "", Data: []byte("x")}}, certs[:3], 2},
		"duplicate tag":       {[]Blob{{Tag: "a"}, {Tag: "a"}}, certs[:3], 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if data, err := BuildFile(tc.blobs, tc.certs, tc.required, nil); err == nil || data != nil {
				t.Errorf("BuildFile = %d bytes, %v; want error", len(data), err)
			}
		})
	}
	// The limits themselves are accepted.
	for _, tc := range []struct{ n, required int }{{3, 3}, {10, 10}, {10, 2}} {
		if _, err := BuildFile(tresorBlobs(), certs[:tc.n], tc.required, nil); err != nil {
			t.Errorf("BuildFile(%d certs, quorum %d): %v", tc.n, tc.required, err)
		}
	}
}

func TestParseCertificateRules(t *testing.T) {
	small := cachedRSAKey(t, "small", 1024)
	if _, err := ParseCertificate(selfSigned(t, "small", small)); err == nil {
		t.Error("accepted a 1024-bit certificate")
	}
	if _, err := ParseCertificate(genECCertDER(t)); err == nil {
		t.Error("accepted an EC certificate")
	}
	// Expired certificates are fine: the Azure custodian certs expired in 2021.
	if _, err := ParseCertificatePEM(readAzure(t, "sd1.cer")); err != nil {
		t.Error(err)
	}
}

// mutateFile applies f to the decoded Azure sdfile.json and re-encodes it.
func mutateFile(t *testing.T, f func(d map[string]any)) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(readAzure(t, "sdfile.json"), &d); err != nil {
		t.Fatal(err)
	}
	f(d)
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseFileValidation(t *testing.T) {
	enc := func(d map[string]any) map[string]any { return d["EncData"].(map[string]any) }
	sk := func(d map[string]any) map[string]any { return d["SharedKeys"].(map[string]any) }
	item := func(d map[string]any, i int) map[string]any { return enc(d)["data"].([]any)[i].(map[string]any) }
	share := func(d map[string]any, i int) map[string]any { return sk(d)["enc_shares"].([]any)[i].(map[string]any) }
	tests := map[string]struct {
		mut  func(d map[string]any)
		want error
	}{
		"version 1":         {func(d map[string]any) { d["version"] = 1 }, ErrMalformed},
		"version 3":         {func(d map[string]any) { d["version"] = 3 }, ErrMalformed},
		"version string":    {func(d map[string]any) { d["version"] = "2" }, ErrMalformed},
		"version 2.5":       {func(d map[string]any) { d["version"] = 2.5 }, ErrMalformed},
		"no version":        {func(d map[string]any) { delete(d, "version") }, ErrMalformed},
		"no EncData":        {func(d map[string]any) { delete(d, "EncData") }, ErrMalformed},
		"no SharedKeys":     {func(d map[string]any) { delete(d, "SharedKeys") }, ErrMalformed},
		"SharedKeys null":   {func(d map[string]any) { d["SharedKeys"] = nil }, ErrMalformed},
		"xor_split":         {func(d map[string]any) { sk(d)["key_algorithm"] = "xor_split" }, ErrMalformed},
		"required 1":        {func(d map[string]any) { sk(d)["required"] = 1 }, ErrMalformed},
		"required 11":       {func(d map[string]any) { sk(d)["required"] = 11 }, ErrMalformed},
		"required > shares": {func(d map[string]any) { sk(d)["required"] = 4 }, ErrMalformed},
		"required string":   {func(d map[string]any) { sk(d)["required"] = "2" }, ErrMalformed},
		"no shares":         {func(d map[string]any) { sk(d)["enc_shares"] = []any{} }, ErrMalformed},
		"shares not array":  {func(d map[string]any) { sk(d)["enc_shares"] = map[string]any{} }, ErrMalformed},
		"127 shares": {func(d map[string]any) {
			s := sk(d)["enc_shares"].([]any)
			var many []any
			for len(many) < 127 {
				many = append(many, s...)
			}
			sk(d)["enc_shares"] = many[:127]
		}, ErrMalformed},
		"bad x5t":            {func(d map[string]any) { share(d, 1)["x5t_256"] = "abc" }, ErrMalformed},
		"no x5t":             {func(d map[string]any) { delete(share(d, 1), "x5t_256") }, ErrMalformed},
		"enc_key dir":        {func(d map[string]any) { share(d, 0)["enc_key"] = item(d, 0)["compact_jwe"] }, ErrMalformed},
		"enc_key junk":       {func(d map[string]any) { share(d, 0)["enc_key"] = "junk" }, ErrMalformed},
		"kdf":                {func(d map[string]any) { enc(d)["kdf"] = "other" }, ErrMalformed},
		"no data":            {func(d map[string]any) { enc(d)["data"] = []any{} }, ErrMalformed},
		"data item string":   {func(d map[string]any) { enc(d)["data"] = []any{"x"} }, ErrMalformed},
		"empty tag":          {func(d map[string]any) { item(d, 0)["tag"] = "" }, ErrMissingTag},
		"duplicate tag":      {func(d map[string]any) { item(d, 2)["tag"] = "hsm_backup" }, ErrDuplicateTag},
		"kid differs":        {func(d map[string]any) { item(d, 2)["tag"] = "renamed" }, ErrMalformed},
		"blob is rsa jwe":    {func(d map[string]any) { item(d, 0)["compact_jwe"] = share(d, 0)["enc_key"] }, ErrMalformed},
		"compact_jwe number": {func(d map[string]any) { item(d, 0)["compact_jwe"] = 1 }, ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := ParseFile(mutateFile(t, tc.mut))
			if !errors.Is(err, tc.want) || f != nil {
				t.Errorf("ParseFile = %v; want %v", err, tc.want)
			}
		})
	}
	for _, in := range []string{"", "null", "[]", "{}", "1", `"x"`, "{", `{"version":2}`} {
		if f, err := ParseFile([]byte(in)); !errors.Is(err, ErrMalformed) || f != nil {
			t.Errorf("ParseFile(%q) = %v; want ErrMalformed", in, err)
		}
	}
	// Extra fields are ignored.
	if _, err := ParseFile(mutateFile(t, func(d map[string]any) { d["extra"] = true })); err != nil {
		t.Errorf("extra field: %v", err)
	}
}

// Open re-validates a File whose exported fields were changed.
func TestOpenRevalidates(t *testing.T) {
	f := parseAzureFile(t)
	g := *f
	g.Required = 1
	if _, err := g.Open([]Custodian{azureCustodian(t, 1)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Open with Required 1: %v", err)
	}
}

// A flipped bit anywhere in a share JWE that Open uses makes Open fail
// cleanly: an error, no blobs, no panic.
func TestFlippedShareBitProperty(t *testing.T) {
	cs := genCustodians(t, 3)
	data, err := BuildFile(tresorBlobs(), certsOf(cs), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(rt *rapid.T) {
		si := rapid.IntRange(0, 2).Draw(rt, "share")
		parts := strings.Split(f.Shares[si].EncKey, ".")
		var part int
		for {
			part = rapid.IntRange(0, 4).Draw(rt, "part")
			if parts[part] != "" {
				break
			}
		}
		raw, err := decodeB64(parts[part])
		if err != nil {
			rt.Fatal(err)
		}
		bit := rapid.IntRange(0, 8*len(raw)-1).Draw(rt, "bit")
		raw[bit/8] ^= 1 << (bit % 8)
		parts[part] = b64.EncodeToString(raw)
		g := *f
		g.Shares = append([]Share(nil), f.Shares...)
		g.Shares[si].EncKey = strings.Join(parts, ".")
		// The tampered share's custodian goes first, so its share is used.
		other := (si + 1 + rapid.IntRange(0, 1).Draw(rt, "other")) % 3
		blobs, err := g.Open([]Custodian{cs[si], cs[other]})
		if err == nil || blobs != nil {
			rt.Fatalf("Open with bit %d of part %d flipped in share %d succeeded", bit, part, si)
		}
		if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrMalformed) {
			rt.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// sameKeyCert returns a second certificate for the key of c: another
// subject, serial and signature algorithm, so that its DER and thumbprint
// differ while its public key does not. pub, when not nil, is the public
// key put in the certificate instead (to vary the exponent).
func sameKeyCert(t *testing.T, c Custodian, pub *rsa.PublicKey, sigAlg x509.SignatureAlgorithm) *Certificate {
	t.Helper()
	if pub == nil {
		pub = &c.Key.PublicKey
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(42),
		Subject:            pkix.Name{CommonName: "the same custodian again", Organization: []string{"elsewhere"}},
		NotBefore:          time.Now().Add(-48 * time.Hour),
		NotAfter:           time.Now().Add(365 * 24 * time.Hour),
		SignatureAlgorithm: sigAlg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Thumbprint() == c.Cert.Thumbprint() {
		t.Fatal("the second certificate has the same thumbprint")
	}
	return cert
}

// One key in two certificates would give its holder two shares: a quorum
// of 2 met by one custodian. BuildFile refuses any two certificates with
// the same modulus, whatever their encoding or exponent.
func TestBuildFileRefusesSharedKey(t *testing.T) {
	cs := genCustodians(t, 10)
	certs := certsOf(cs)
	again := sameKeyCert(t, cs[0], nil, x509.SHA256WithRSA)
	pss := sameKeyCert(t, cs[1], nil, x509.SHA384WithRSAPSS)
	otherE := sameKeyCert(t, cs[2], &rsa.PublicKey{N: cs[2].Key.N, E: 65539}, x509.SHA512WithRSA)
	tests := map[string]struct {
		certs    []*Certificate
		required int
		first    int // the certificate the duplicate repeats
		second   int // the duplicate
	}{
		"cert_0, its twin, cert_1 at quorum 2": {[]*Certificate{certs[0], again, certs[1]}, 2, 0, 1},
		"twin last":                            {[]*Certificate{certs[0], certs[1], certs[2], again}, 2, 0, 3},
		"twin first":                           {[]*Certificate{again, certs[1], certs[0]}, 2, 0, 2},
		"PSS-signed twin":                      {[]*Certificate{certs[0], certs[1], pss}, 3, 1, 2},
		"same modulus, other exponent":         {[]*Certificate{certs[2], otherE, certs[0]}, 2, 0, 1},
		"ten certificates, twin among them":    {append(append([]*Certificate(nil), certs[:9]...), pss), 10, 1, 9},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data, err := BuildFile(tresorBlobs(), tc.certs, tc.required, nil)
			if !errors.Is(err, ErrDuplicateKey) || data != nil {
				t.Fatalf("BuildFile = %d bytes, %v; want ErrDuplicateKey", len(data), err)
			}
			want := fmt.Sprintf("certificates %d and %d", tc.first, tc.second)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		})
	}
	// Distinct keys are still fine.
	if _, err := BuildFile(tresorBlobs(), []*Certificate{again, certs[1], certs[2]}, 2, nil); err != nil {
		t.Errorf("distinct keys refused: %v", err)
	}
}
