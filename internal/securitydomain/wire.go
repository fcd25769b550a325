package securitydomain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Strict, case-sensitive JSON access for the security-domain documents.
// encoding/json matches struct fields case-insensitively and accepts null
// for anything; the Azure clients (Python json, Newtonsoft) do not, so the
// parsers read objects as maps and check each field's type themselves.
// Unknown fields are ignored.

type object struct {
	m    map[string]json.RawMessage
	path string
}

func parseObject(raw []byte, path string) (object, error) {
	raw = bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		if path == "" {
			return object{}, malformed("not a JSON object")
		}
		return object{}, malformed("%s: not a JSON object", path)
	}
	return object{m: m, path: path}, nil
}

func (o object) where(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o object) get(key string) (json.RawMessage, error) {
	raw, ok := o.m[key]
	if !ok {
		return nil, malformed("missing field %s", o.where(key))
	}
	return raw, nil
}

func (o object) str(key string) (string, error) {
	raw, err := o.get(key)
	if err != nil {
		return "", err
	}
	var s string
	if unmarshalString(raw, &s) != nil {
		return "", malformed("%s: not a string", o.where(key))
	}
	return s, nil
}

func (o object) integer(key string) (int, error) {
	raw, err := o.get(key)
	if err != nil {
		return 0, err
	}
	raw = bytes.TrimSpace(raw)
	var n int
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || json.Unmarshal(raw, &n) != nil {
		return 0, malformed("%s: not an integer", o.where(key))
	}
	return n, nil
}

func (o object) obj(key string) (object, error) {
	raw, err := o.get(key)
	if err != nil {
		return object{}, err
	}
	return parseObject(raw, o.where(key))
}

func (o object) array(key string) ([]json.RawMessage, error) {
	raw, err := o.get(key)
	if err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	var a []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
		return nil, malformed("%s: not a JSON array", o.where(key))
	}
	return a, nil
}

// taggedJWE is one EncData.data entry as read from JSON.
type taggedJWE struct {
	Tag        string
	CompactJWE string
}

// parseEncData reads and checks an EncData object: kdf sp108_kdf and a
// non-empty data array of entries with unique non-empty tags. When
// doubleEncoded is set, a compact_jwe without '.' is base64url-decoded first
// (an old CLI revision wrote it that way).
func parseEncData(root object, doubleEncoded bool) ([]taggedJWE, error) {
	enc, err := root.obj("EncData")
	if err != nil {
		return nil, err
	}
	kdf, err := enc.str("kdf")
	if err != nil {
		return nil, err
	}
	if kdf != "sp108_kdf" {
		return nil, malformed("EncData.kdf must be \"sp108_kdf\"")
	}
	items, err := enc.array("data")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, malformed("EncData.data is empty")
	}
	out := make([]taggedJWE, len(items))
	seen := make(map[string]bool, len(items))
	for i, raw := range items {
		item, err := parseObject(raw, fmt.Sprintf("EncData.data[%d]", i))
		if err != nil {
			return nil, err
		}
		if out[i].Tag, err = item.str("tag"); err != nil {
			return nil, err
		}
		if out[i].CompactJWE, err = item.str("compact_jwe"); err != nil {
			return nil, err
		}
		if out[i].Tag == "" {
			return nil, fmt.Errorf("%w: EncData.data[%d]", ErrMissingTag, i)
		}
		if seen[out[i].Tag] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateTag, quoteTag(out[i].Tag))
		}
		seen[out[i].Tag] = true
		if doubleEncoded {
			if out[i].CompactJWE, err = undoubleJWE(out[i].CompactJWE); err != nil {
				return nil, atPath(fmt.Sprintf("EncData.data[%d].compact_jwe", i), err)
			}
		}
		j, err := parseCompact(out[i].CompactJWE, algDir)
		if err != nil {
			return nil, atPath(fmt.Sprintf("EncData.data[%d].compact_jwe", i), err)
		}
		if !j.hasKid || j.kid != out[i].Tag {
			return nil, malformed("EncData.data[%d]: JWE kid does not match tag", i)
		}
	}
	return out, nil
}

// undoubleJWE undoes the extra base64url layer an old CLI revision put
// around compact JWEs: a value with no '.' is decoded once.
func undoubleJWE(s string) (string, error) {
	if strings.Contains(s, ".") {
		return s, nil
	}
	dec, err := decodeB64(s)
	if err != nil {
		return "", malformed("not a compact JWE")
	}
	return string(dec), nil
}

// marshalJSON encodes v without HTML escaping and without a final newline.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("securitydomain: encoding JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

type encDataJSON struct {
	Data []blobJSON `json:"data"`
	KDF  string     `json:"kdf"`
}

type blobJSON struct {
	CompactJWE string `json:"compact_jwe"`
	Tag        string `json:"tag"`
}

type wrappedKeyJSON struct {
	EncKey string `json:"enc_key"`
	X5T256 string `json:"x5t_256"`
}

// encryptBlobs derives each blob's CEK from master and encrypts it.
func encryptBlobs(master []byte, blobs []Blob, rand io.Reader) (encDataJSON, error) {
	out := encDataJSON{KDF: "sp108_kdf", Data: make([]blobJSON, len(blobs))}
	for i, b := range blobs {
		cek := blobKey(master, b.Tag)
		jwe, err := EncryptDir(cek, b.Tag, b.Data, rand)
		clear(cek)
		if err != nil {
			return encDataJSON{}, err
		}
		out.Data[i] = blobJSON{CompactJWE: jwe, Tag: b.Tag}
	}
	return out, nil
}

// decryptBlobs derives each blob's CEK from master and decrypts it.
func decryptBlobs(master []byte, items []taggedJWE) ([]Blob, error) {
	out := make([]Blob, len(items))
	for i, it := range items {
		cek := blobKey(master, it.Tag)
		pt, _, err := DecryptDir(cek, it.CompactJWE)
		clear(cek)
		if err != nil {
			for _, b := range out[:i] {
				clear(b.Data)
			}
			if errors.Is(err, ErrTampered) {
				return nil, &TamperedError{Field: fmt.Sprintf("EncData.data[%d]", i), Tag: it.Tag}
			}
			return nil, atPath(fmt.Sprintf("EncData.data[%d]", i), err)
		}
		out[i] = Blob{Tag: it.Tag, Data: pt}
	}
	return out, nil
}
