package securitydomain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// Tests against the real Azure security domain in
// testdata/azure-security-domain (see its README.md).

func parseAzureFile(t *testing.T) *File {
	t.Helper()
	f, err := ParseFile(readAzure(t, "sdfile.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkAzurePlaintexts compares blobs with the documented plaintexts.
func checkAzurePlaintexts(t *testing.T, e *expected, blobs []Blob) {
	t.Helper()
	if len(blobs) != len(e.EncData) {
		t.Fatalf("%d blobs, want %d", len(blobs), len(e.EncData))
	}
	for i, d := range e.EncData {
		b := blobs[i]
		if b.Tag != d.Tag {
			t.Errorf("blob %d: tag %q, want %q", i, b.Tag, d.Tag)
			continue
		}
		sum := sha256.Sum256(b.Data)
		if len(b.Data) != d.Len || hex.EncodeToString(sum[:]) != d.SHA256Hex {
			t.Errorf("%s: %d bytes sha256 %x, want %d bytes sha256 %s", d.Tag, len(b.Data), sum, d.Len, d.SHA256Hex)
		}
		if len(b.Data) >= 64 && hex.EncodeToString(b.Data[:64]) != d.First64Hex {
			t.Errorf("%s: first 64 bytes %x", d.Tag, b.Data[:64])
		}
	}
}

func TestAzureParseFile(t *testing.T) {
	e := loadExpected(t)
	f := parseAzureFile(t)
	if f.Required != e.Required || len(f.Shares) != 3 || len(f.Data) != 3 {
		t.Fatalf("required %d, %d shares, %d blobs", f.Required, len(f.Shares), len(f.Data))
	}
	for _, c := range e.Custodians {
		if got := f.Shares[c.EncSharesIndex].X5T256; got != c.X5T256 {
			t.Errorf("share %d: x5t_256 %s, want %s", c.EncSharesIndex, got, c.X5T256)
		}
	}
	for i, d := range e.EncData {
		if f.Data[i].Tag != d.Tag {
			t.Errorf("blob %d: tag %q, want %q", i, f.Data[i].Tag, d.Tag)
		}
	}
	// Marshal reproduces the service's bytes exactly.
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, readAzure(t, "sdfile.json")) {
		t.Error("Marshal(ParseFile(sdfile.json)) differs from sdfile.json")
	}
}

func TestAzureShares(t *testing.T) {
	e := loadExpected(t)
	f := parseAzureFile(t)
	for n, c := range e.Custodians {
		cust := azureCustodian(t, n+1)
		pt, err := DecryptRSA(cust.Key, f.Shares[c.EncSharesIndex].EncKey)
		if err != nil {
			t.Fatalf("%s: %v", c.Cert, err)
		}
		if got := hex.EncodeToString(pt); got != c.SharePlaintextHex {
			t.Errorf("%s: share %s, want %s", c.Cert, got, c.SharePlaintextHex)
		}
		if x := int(pt[1] >> 1); x != c.ShamirX {
			t.Errorf("%s: x = %d, want %d", c.Cert, x, c.ShamirX)
		}
	}
}

func TestAzureEveryPairOpens(t *testing.T) {
	e := loadExpected(t)
	f := parseAzureFile(t)
	want := mustHex(t, e.MasterKeyHex)
	for _, pair := range [][2]int{{1, 2}, {1, 3}, {2, 3}, {2, 1}, {3, 1}, {3, 2}} {
		t.Run(fmt.Sprintf("sd%d+sd%d", pair[0], pair[1]), func(t *testing.T) {
			custodians := []Custodian{azureCustodian(t, pair[0]), azureCustodian(t, pair[1])}
			master, err := f.masterKey(custodians)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(master, want) {
				t.Errorf("master key %x, want %x", master, want)
			}
			blobs, err := f.Open(custodians)
			if err != nil {
				t.Fatal(err)
			}
			checkAzurePlaintexts(t, e, blobs)
		})
	}
	t.Run("all three", func(t *testing.T) {
		blobs, err := f.Open([]Custodian{azureCustodian(t, 3), azureCustodian(t, 2), azureCustodian(t, 1)})
		if err != nil {
			t.Fatal(err)
		}
		checkAzurePlaintexts(t, e, blobs)
	})
}

func TestAzureInsufficientShares(t *testing.T) {
	f := parseAzureFile(t)
	stranger := genCustodian(t, 0)
	tests := map[string][]Custodian{
		"none":             nil,
		"sd1 alone":        {azureCustodian(t, 1)},
		"sd3 alone":        {azureCustodian(t, 3)},
		"sd1 twice":        {azureCustodian(t, 1), azureCustodian(t, 1)},
		"sd1 and stranger": {azureCustodian(t, 1), stranger},
		"exchange key":     {{Cert: loadCert(t, "exchange.cer"), Key: loadKey(t, "exchange.key")}, azureCustodian(t, 2)},
	}
	for name, cs := range tests {
		t.Run(name, func(t *testing.T) {
			blobs, err := f.Open(cs)
			if !errors.Is(err, ErrInsufficientShares) || blobs != nil {
				t.Errorf("Open = %d blobs, %v; want ErrInsufficientShares", len(blobs), err)
			}
		})
	}
}

func TestAzureKeyMismatch(t *testing.T) {
	f := parseAzureFile(t)
	bad := Custodian{Cert: loadCert(t, "sd1.cer"), Key: loadKey(t, "sd2.pem")}
	blobs, err := f.Open([]Custodian{bad, azureCustodian(t, 3)})
	if !errors.Is(err, ErrKeyMismatch) || blobs != nil {
		t.Errorf("Open = %v; want ErrKeyMismatch", err)
	}
	for _, c := range []Custodian{{}, {Cert: loadCert(t, "sd1.cer")}, {Key: loadKey(t, "sd1.pem")}} {
		if blobs, err := f.Open([]Custodian{c, azureCustodian(t, 2), azureCustodian(t, 3)}); err == nil || blobs != nil {
			t.Errorf("Open with incomplete custodian = %v", err)
		}
	}
}

func TestAzureTamperedFile(t *testing.T) {
	f := parseAzureFile(t)
	cs := []Custodian{azureCustodian(t, 1), azureCustodian(t, 2)}

	t.Run("blob", func(t *testing.T) {
		g := *f
		g.Data = append([]EncryptedBlob(nil), f.Data...)
		g.Data[1].CompactJWE = flipPart(t, g.Data[1].CompactJWE, 3, 100, 2)
		blobs, err := g.Open(cs)
		var te *TamperedError
		if !errors.As(err, &te) || !errors.Is(err, ErrTampered) || blobs != nil {
			t.Fatalf("Open = %v; want *TamperedError", err)
		}
		if te.Tag != "base_enclave_backup" || te.Field != "EncData.data[1]" {
			t.Errorf("TamperedError = %+v", te)
		}
	})
	t.Run("share", func(t *testing.T) {
		g := *f
		g.Shares = append([]Share(nil), f.Shares...)
		g.Shares[0].EncKey = flipPart(t, g.Shares[0].EncKey, 1, 17, 0)
		blobs, err := g.Open(cs)
		var te *TamperedError
		if !errors.As(err, &te) || blobs != nil {
			t.Fatalf("Open = %v; want *TamperedError", err)
		}
		if te.Field != "SharedKeys.enc_shares[0]" || te.Tag != "" {
			t.Errorf("TamperedError = %+v", te)
		}
	})
	t.Run("swapped blobs", func(t *testing.T) {
		g := *f
		g.Data = append([]EncryptedBlob(nil), f.Data...)
		g.Data[0].CompactJWE, g.Data[1].CompactJWE = g.Data[1].CompactJWE, g.Data[0].CompactJWE
		if blobs, err := g.Open(cs); err == nil || blobs != nil {
			t.Fatal("Open accepted blobs under swapped tags")
		}
	})
}

func TestAzureUploadBlobRoundTrip(t *testing.T) {
	e := loadExpected(t)
	blobs, err := parseAzureFile(t).Open([]Custodian{azureCustodian(t, 1), azureCustodian(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	exchange := loadCert(t, "exchange.cer")
	data, err := BuildUploadBlob(blobs, exchange, nil)
	if err != nil {
		t.Fatal(err)
	}
	var shape struct {
		EncData struct {
			Data []struct {
				CompactJWE string `json:"compact_jwe"`
				Tag        string `json:"tag"`
			} `json:"data"`
			KDF string `json:"kdf"`
		}
		WrappedKey struct {
			EncKey string `json:"enc_key"`
			X5T256 string `json:"x5t_256"`
		}
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		t.Fatal(err)
	}
	if shape.WrappedKey.X5T256 != "hkiwYa2j02skhRdF9VtMEGleyrwuGcj20cg20eUIqFU" {
		t.Errorf("WrappedKey.x5t_256 = %s", shape.WrappedKey.X5T256)
	}
	if shape.EncData.KDF != "sp108_kdf" || len(shape.EncData.Data) != 3 {
		t.Errorf("EncData = %+v", shape.EncData)
	}
	xkey := loadKey(t, "exchange.key")
	master, err := DecryptRSA(xkey, shape.WrappedKey.EncKey)
	if err != nil || len(master) != 32 {
		t.Fatalf("wrapped key: %d bytes, %v", len(master), err)
	}
	opened, err := OpenUploadBlob(data, exchange.DER, xkey)
	if err != nil {
		t.Fatal(err)
	}
	checkAzurePlaintexts(t, e, opened)
}

func TestAzureRestoreBlobFromCLI(t *testing.T) {
	e := loadExpected(t)
	data := readAzure(t, "restore-blob.sd1-sd2.json")
	exchange := loadCert(t, "exchange.cer")
	blobs, err := OpenUploadBlob(data, exchange.DER, loadKey(t, "exchange.key"))
	if err != nil {
		t.Fatal(err)
	}
	checkAzurePlaintexts(t, e, blobs)
	if err := RequireTags(blobs, TagHSMBackup, TagBaseEnclaveBackup, TagPartitionEnclaveBackup); err != nil {
		t.Error(err)
	}
}

func TestAzureRestoreBlobWrongExchangeKey(t *testing.T) {
	data := readAzure(t, "restore-blob.sd1-sd2.json")
	exchange := loadCert(t, "exchange.cer")
	generated := genCustodian(t, 1)
	tests := map[string]struct {
		der []byte
		key Custodian
	}{
		"other cert and key":         {loadCert(t, "sd1.cer").DER, azureCustodian(t, 1)},
		"right cert, wrong key":      {exchange.DER, azureCustodian(t, 1)},
		"generated exchange key":     {generated.Cert.DER, generated},
		"sd2 cert with exchange key": {loadCert(t, "sd2.cer").DER, Custodian{Key: loadKey(t, "exchange.key")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			blobs, err := OpenUploadBlob(data, tc.der, tc.key.Key)
			if !errors.Is(err, ErrWrongExchangeKey) || blobs != nil {
				t.Errorf("OpenUploadBlob = %v; want ErrWrongExchangeKey", err)
			}
		})
	}
}

func TestAzureRestoreBlobTampered(t *testing.T) {
	exchange := loadCert(t, "exchange.cer")
	xkey := loadKey(t, "exchange.key")
	orig := readAzure(t, "restore-blob.sd1-sd2.json")

	var doc map[string]map[string]any
	if err := json.Unmarshal(orig, &doc); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(doc map[string]map[string]any)) []byte {
		var d map[string]map[string]any
		if err := json.Unmarshal(orig, &d); err != nil {
			t.Fatal(err)
		}
		f(d)
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	item := func(d map[string]map[string]any, i int) map[string]any {
		return d["EncData"]["data"].([]any)[i].(map[string]any)
	}
	for i, tag := range []string{"hsm_backup", "base_enclave_backup", "partition_enclave_backup"} {
		t.Run(tag, func(t *testing.T) {
			data := mutate(func(d map[string]map[string]any) {
				it := item(d, i)
				it["compact_jwe"] = flipPart(t, it["compact_jwe"].(string), 3, 7, 1)
			})
			blobs, err := OpenUploadBlob(data, exchange.DER, xkey)
			var te *TamperedError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) || blobs != nil {
				t.Fatalf("OpenUploadBlob = %v; want *TamperedError", err)
			}
			if te.Tag != tag {
				t.Errorf("TamperedError.Tag = %q, want %q", te.Tag, tag)
			}
		})
	}
	t.Run("wrapped key", func(t *testing.T) {
		data := mutate(func(d map[string]map[string]any) {
			d["WrappedKey"]["enc_key"] = flipPart(t, d["WrappedKey"]["enc_key"].(string), 3, 0, 0)
		})
		blobs, err := OpenUploadBlob(data, exchange.DER, xkey)
		var te *TamperedError
		if !errors.As(err, &te) || blobs != nil || te.Field != "WrappedKey.enc_key" {
			t.Fatalf("OpenUploadBlob = %v; want *TamperedError for WrappedKey.enc_key", err)
		}
	})
	t.Run("wrapped key rsa part", func(t *testing.T) {
		data := mutate(func(d map[string]map[string]any) {
			d["WrappedKey"]["enc_key"] = flipPart(t, d["WrappedKey"]["enc_key"].(string), 1, 100, 4)
		})
		if blobs, err := OpenUploadBlob(data, exchange.DER, xkey); !errors.Is(err, ErrTampered) || blobs != nil {
			t.Fatalf("OpenUploadBlob = %v; want ErrTampered", err)
		}
	})
}

func TestAzureRestoreBlobShape(t *testing.T) {
	exchange := loadCert(t, "exchange.cer")
	xkey := loadKey(t, "exchange.key")
	orig := readAzure(t, "restore-blob.sd1-sd2.json")
	mutate := func(f func(d map[string]map[string]any)) []byte {
		var d map[string]map[string]any
		if err := json.Unmarshal(orig, &d); err != nil {
			t.Fatal(err)
		}
		f(d)
		out, _ := json.Marshal(d)
		return out
	}
	item := func(d map[string]map[string]any, i int) map[string]any {
		return d["EncData"]["data"].([]any)[i].(map[string]any)
	}
	tests := map[string]struct {
		data []byte
		want error
	}{
		"not json":      {[]byte("{"), ErrMalformed},
		"array":         {[]byte("[]"), ErrMalformed},
		"null":          {[]byte("null"), ErrMalformed},
		"empty":         {nil, ErrMalformed},
		"no EncData":    {mutate(func(d map[string]map[string]any) { delete(d, "EncData") }), ErrMalformed},
		"no WrappedKey": {mutate(func(d map[string]map[string]any) { delete(d, "WrappedKey") }), ErrMalformed},
		"lowercase key": {mutate(func(d map[string]map[string]any) { d["encdata"] = d["EncData"]; delete(d, "EncData") }), ErrMalformed},
		"kdf":           {mutate(func(d map[string]map[string]any) { d["EncData"]["kdf"] = "hkdf" }), ErrMalformed},
		"data empty":    {mutate(func(d map[string]map[string]any) { d["EncData"]["data"] = []any{} }), ErrMalformed},
		"data null":     {mutate(func(d map[string]map[string]any) { d["EncData"]["data"] = nil }), ErrMalformed},
		"x5t number":    {mutate(func(d map[string]map[string]any) { d["WrappedKey"]["x5t_256"] = 5 }), ErrMalformed},
		"enc_key gone":  {mutate(func(d map[string]map[string]any) { delete(d["WrappedKey"], "enc_key") }), ErrMalformed},
		"enc_key junk":  {mutate(func(d map[string]map[string]any) { d["WrappedKey"]["enc_key"] = "a.b" }), ErrMalformed},
		"enc_key dir": {mutate(func(d map[string]map[string]any) {
			d["WrappedKey"]["enc_key"] = item(d, 0)["compact_jwe"]
		}), ErrMalformed},
		"empty tag":     {mutate(func(d map[string]map[string]any) { item(d, 1)["tag"] = "" }), ErrMissingTag},
		"no tag":        {mutate(func(d map[string]map[string]any) { delete(item(d, 1), "tag") }), ErrMalformed},
		"duplicate tag": {mutate(func(d map[string]map[string]any) { item(d, 1)["tag"] = "hsm_backup" }), ErrDuplicateTag},
		"renamed tag":   {mutate(func(d map[string]map[string]any) { item(d, 2)["tag"] = "other" }), ErrMalformed},
		"kid mismatch": {mutate(func(d map[string]map[string]any) {
			item(d, 0)["compact_jwe"], item(d, 1)["compact_jwe"] = item(d, 1)["compact_jwe"], item(d, 0)["compact_jwe"]
		}), ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			blobs, err := OpenUploadBlob(tc.data, exchange.DER, xkey)
			if !errors.Is(err, tc.want) || blobs != nil {
				t.Errorf("OpenUploadBlob = %d blobs, %v; want %v", len(blobs), err, tc.want)
			}
		})
	}
	if _, err := OpenUploadBlob(orig, exchange.DER, nil); err == nil {
		t.Error("OpenUploadBlob accepted a nil key")
	}
	if _, err := OpenUploadBlob(orig, []byte("junk"), xkey); err == nil {
		t.Error("OpenUploadBlob accepted a junk certificate")
	}
}

// An old CLI revision base64url-encoded the compact JWEs a second time.
func TestAzureRestoreBlobDoubleEncoded(t *testing.T) {
	e := loadExpected(t)
	exchange := loadCert(t, "exchange.cer")
	var d map[string]map[string]any
	if err := json.Unmarshal(readAzure(t, "restore-blob.sd1-sd2.json"), &d); err != nil {
		t.Fatal(err)
	}
	for _, it := range d["EncData"]["data"].([]any) {
		m := it.(map[string]any)
		m["compact_jwe"] = b64.EncodeToString([]byte(m["compact_jwe"].(string)))
	}
	d["WrappedKey"]["enc_key"] = b64.EncodeToString([]byte(d["WrappedKey"]["enc_key"].(string)))
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := OpenUploadBlob(data, exchange.DER, loadKey(t, "exchange.key"))
	if err != nil {
		t.Fatal(err)
	}
	checkAzurePlaintexts(t, e, blobs)
}
