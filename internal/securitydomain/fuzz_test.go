package securitydomain

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseFile: ParseFile never panics, returns nil on error, and what it
// accepts survives Marshal → ParseFile unchanged.
func FuzzParseFile(f *testing.F) {
	f.Add(readAzure(f, "sdfile.json"))
	f.Add(readAzure(f, "restore-blob.sd1-sd2.json"))
	f.Add(readAzure(f, "expected.json"))
	cs := genCustodians(f, 3)
	built, err := BuildFile(tresorBlobs(), certsOf(cs), 3, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(built)
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile(data)
		if err != nil {
			if file != nil {
				t.Fatalf("error %v with non-nil file", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrMissingTag) && !errors.Is(err, ErrDuplicateTag) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		out, err := file.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFile(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled file: %v", err)
		}
		if !reflect.DeepEqual(file, again) {
			t.Fatal("Marshal → ParseFile changed the file")
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable: %v", err)
		}
	})
}

// FuzzOpenUploadBlob: OpenUploadBlob never panics, returns nil blobs on
// error, fails only with the documented error kinds, and what it accepts
// has unique non-empty tags.
func FuzzOpenUploadBlob(f *testing.F) {
	exchange := loadCert(f, "exchange.cer")
	xkey := loadKey(f, "exchange.key")
	f.Add(readAzure(f, "restore-blob.sd1-sd2.json"))
	f.Add(readAzure(f, "sdfile.json"))
	built, err := BuildUploadBlob(tresorBlobs(), exchange, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(built)
	f.Fuzz(func(t *testing.T, data []byte) {
		blobs, err := OpenUploadBlob(data, exchange.DER, xkey)
		if err != nil {
			if blobs != nil {
				t.Fatalf("error %v with non-nil blobs", err)
			}
			known := false
			for _, e := range []error{ErrMalformed, ErrMissingTag, ErrDuplicateTag, ErrWrongExchangeKey, ErrTampered} {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, b := range blobs {
			if b.Tag == "" || seen[b.Tag] {
				t.Fatalf("accepted blob with empty or repeated tag %q", b.Tag)
			}
			seen[b.Tag] = true
		}
	})
}

// FuzzCombine: Combine never panics and returns nil on error.
func FuzzCombine(f *testing.F) {
	f.Add(mustHex(f, sampleShares[0]), mustHex(f, sampleShares[1]), []byte{})
	f.Add(mustHex(f, sampleShares[0]), mustHex(f, sampleShares[1]), mustHex(f, sampleShares[2]))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		shares := [][]byte{a, b}
		if len(c) > 0 {
			shares = append(shares, c)
		}
		secret, err := Combine(shares)
		if (err != nil) == (secret != nil) {
			t.Fatalf("secret %x with error %v", secret, err)
		}
		if err == nil && len(secret) != len(a)/2 {
			t.Fatalf("secret length %d from %d-byte shares", len(secret), len(a))
		}
	})
}
