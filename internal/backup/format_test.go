package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"tresor/internal/barrier"
)

func TestFolderName(t *testing.T) {
	tests := map[string]struct {
		name string
		t    time.Time
		want string
	}{
		"spec example":               {"myhsm", time.Date(2021, 4, 28, 21, 18, 31, 840_000_000, time.UTC), "mhsm-myhsm-2021042821183184"},
		"upper case name is lowered": {"MyHSM", time.Date(2021, 4, 28, 21, 18, 31, 840_000_000, time.UTC), "mhsm-myhsm-2021042821183184"},
		"zero hundredths":            {"hsm1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "mhsm-hsm1-2026010203040500"},
		"hundredths truncate":        {"hsm1", time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC), "mhsm-hsm1-2026010203040599"},
		"one hundredth":              {"hsm1", time.Date(2026, 1, 2, 3, 4, 5, 10_000_000, time.UTC), "mhsm-hsm1-2026010203040501"},
		"just under a hundredth":     {"hsm1", time.Date(2026, 1, 2, 3, 4, 5, 9_999_999, time.UTC), "mhsm-hsm1-2026010203040500"},
		"other zone is UTC": {"a-b-c", time.Date(2021, 4, 28, 23, 18, 31, 840_000_000, time.FixedZone("CEST", 2*3600)),
			"mhsm-a-b-c-2021042821183184"},
		"end of year": {"hsm", time.Date(2025, 12, 31, 23, 59, 59, 990_000_000, time.UTC), "mhsm-hsm-2025123123595999"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := FolderName(tc.name, tc.t)
			if got != tc.want {
				t.Fatalf("FolderName(%q, %v) = %q, want %q", tc.name, tc.t, got, tc.want)
			}
			if !ValidFolder(got) {
				t.Fatalf("ValidFolder(%q) = false for FolderName's own result", got)
			}
		})
	}
}

func TestValidFolder(t *testing.T) {
	tests := map[string]struct {
		in   string
		want bool
	}{
		"spec example":         {"mhsm-myhsm-2021042821183184", true},
		"hyphenated name":      {"mhsm-my-hsm-1-2021042821183184", true},
		"shortest name":        {"mhsm-abc-2021042821183184", true},
		"longest name":         {"mhsm-abcdefghijklmnopqrstuvwx-2021042821183184", true},
		"name too short":       {"mhsm-ab-2021042821183184", false},
		"name too long":        {"mhsm-abcdefghijklmnopqrstuvwxy-2021042821183184", false},
		"upper case":           {"mhsm-MyHSM-2021042821183184", false},
		"15 digits":            {"mhsm-myhsm-202104282118318", false},
		"17 digits":            {"mhsm-myhsm-20210428211831840", false},
		"no prefix":            {"myhsm-2021042821183184", false},
		"other prefix":         {"kv-myhsm-2021042821183184", false},
		"letters in the time":  {"mhsm-myhsm-20210428211831ab", false},
		"trailing slash":       {"mhsm-myhsm-2021042821183184/", false},
		"path":                 {"backups/mhsm-myhsm-2021042821183184", false},
		"dot dot":              {"mhsm-..-2021042821183184", false},
		"empty":                {"", false},
		"newline after":        {"mhsm-myhsm-2021042821183184\n", false},
		"underscore in name":   {"mhsm-my_hsm-2021042821183184", false},
		"manifest in the name": {"manifest", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ValidFolder(tc.in); got != tc.want {
				t.Fatalf("ValidFolder(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// testRoot returns a new security-domain root.
func testRoot(t testing.TB) *barrier.RootKey {
	t.Helper()
	r, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testFolderBarrier(t testing.TB, root *barrier.RootKey, folder string) *barrier.Barrier {
	t.Helper()
	b, err := folderBarrier(root, folder)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	testFolder  = "mhsm-myhsm-2021042821183184"
	otherFolder = "mhsm-myhsm-2021042821183185"
)

func TestSealOpenObject(t *testing.T) {
	root := testRoot(t)
	fb := testFolderBarrier(t, root, testFolder)
	pt := []byte(`{"kind":"keys","keys":[]}`)
	sealed, info, err := sealObject(fb, "keys-000001", kindKeys, pt, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(sealed)
	want := ObjectInfo{Name: "keys-000001", Kind: kindKeys, Size: int64(len(sealed)), SHA256: hex.EncodeToString(sum[:])}
	if info != want {
		t.Fatalf("sealObject info = %+v, want %+v", info, want)
	}
	if len(sealed) != len(pt)+barrier.Overhead {
		t.Fatalf("sealed size %d, want %d", len(sealed), len(pt)+barrier.Overhead)
	}
	got, err := openObject(fb, info, sealed)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("openObject = %q, %v; want the plaintext", got, err)
	}

	// withSum describes data as the manifest would, so the AEAD (not the
	// hash check) is what refuses it.
	withSum := func(info ObjectInfo, data []byte) ObjectInfo {
		s := sha256.Sum256(data)
		info.Size, info.SHA256 = int64(len(data)), hex.EncodeToString(s[:])
		return info
	}
	renamed := info
	renamed.Name = "keys-000002"
	// The same object sealed under another folder's barrier, described
	// correctly for its bytes.
	otherSealed, otherInfo, err := sealObject(testFolderBarrier(t, root, otherFolder), info.Name, kindKeys, pt, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrongSize := info
	wrongSize.Size++
	wrongSum := info
	wrongSum.SHA256 = hex.EncodeToString(make([]byte, 32))
	truncated := sealed[:len(sealed)-1]

	tests := map[string]struct {
		b    *barrier.Barrier
		info ObjectInfo
		data []byte
	}{
		"truncated":                      {fb, info, truncated},
		"truncated, hash matching":       {fb, withSum(info, truncated), truncated},
		"empty, hash matching":           {fb, withSum(info, nil), nil},
		"another object name":            {fb, withSum(renamed, sealed), sealed},
		"another folder's barrier":       {fb, otherInfo, otherSealed},
		"another root":                   {testFolderBarrier(t, testRoot(t), testFolder), info, sealed},
		"wrong size in the info":         {fb, wrongSize, sealed},
		"wrong sha256 in the info":       {fb, wrongSum, sealed},
		"upper-case sha256 in the info":  {fb, ObjectInfo{Name: info.Name, Size: info.Size, SHA256: toUpperHex(info.SHA256)}, sealed},
		"appended byte, hash matching":   {fb, withSum(info, append(append([]byte(nil), sealed...), 0)), append(append([]byte(nil), sealed...), 0)},
		"zero info (no size, no sha256)": {fb, ObjectInfo{Name: info.Name}, sealed},
	}
	for i := range sealed {
		bad := append([]byte(nil), sealed...)
		bad[i] ^= 0x01
		tests["flipped byte "+itoa(i)+", hash matching"] = struct {
			b    *barrier.Barrier
			info ObjectInfo
			data []byte
		}{fb, withSum(info, bad), bad}
		tests["flipped byte "+itoa(i)] = struct {
			b    *barrier.Barrier
			info ObjectInfo
			data []byte
		}{fb, info, bad}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := openObject(tc.b, tc.info, tc.data)
			if !errors.Is(err, ErrTampered) || got != nil {
				t.Fatalf("openObject = %q, %v; want nil, ErrTampered", got, err)
			}
		})
	}
}

func toUpperHex(s string) string { return string(bytes.ToUpper([]byte(s))) }

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// testManifest is a manifest of testFolder under root with two keys
// objects, a policy and a settings object.
func testManifest(t testing.TB, root *barrier.RootKey) (Header, map[string]string, []byte) {
	t.Helper()
	fb := testFolderBarrier(t, root, testFolder)
	h := Header{Format: Format, Folder: testFolder, SourceHSM: "myhsm", Created: time.Date(2021, 4, 28, 21, 18, 31, 840_000_000, time.UTC),
		RootKeyID: root.ID(), Keys: 3, DeletedKeys: 1, Versions: 5, RoleAssignments: 1, Settings: 0}
	for _, o := range []struct {
		name, kind string
		keys       int
	}{{"keys-000001", kindKeys, 2}, {"keys-000002", kindKeys, 1}, {"policy", kindPolicy, 0}, {"settings", kindSettings, 0}} {
		_, info, err := sealObject(fb, o.name, o.kind, []byte(`{"kind":"`+o.kind+`"}`), o.keys)
		if err != nil {
			t.Fatal(err)
		}
		h.Objects = append(h.Objects, info)
	}
	index := map[string]string{"k1": "keys-000001", "k2": "keys-000001", "k3": "keys-000002"}
	data, err := encodeManifest(fb, h, index)
	if err != nil {
		t.Fatal(err)
	}
	return h, index, data
}

// editClear decodes a manifest's JSON, lets edit change it and encodes it
// again (the sealed part is kept as it is).
func editClear(t testing.TB, data []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestManifestRoundTrip(t *testing.T) {
	root := testRoot(t)
	h, index, data := testManifest(t, root)
	gotH, gotIndex, err := openManifest(root, testFolder, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotH, h) || !reflect.DeepEqual(gotIndex, index) {
		t.Fatalf("openManifest = %+v, %v; want %+v, %v", gotH, gotIndex, h, index)
	}
	clear, err := ReadHeader(data)
	if err != nil || !reflect.DeepEqual(clear, h) {
		t.Fatalf("ReadHeader = %+v, %v; want %+v", clear, err, h)
	}
}

func TestOpenManifest(t *testing.T) {
	root := testRoot(t)
	h, index, data := testManifest(t, root)
	fb := testFolderBarrier(t, root, testFolder)
	encode := func(h Header, index map[string]string) []byte {
		t.Helper()
		out, err := encodeManifest(fb, h, index)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	withObjects := func(objs ...ObjectInfo) Header {
		h := h
		h.Objects = objs
		return h
	}
	o := h.Objects
	// Another folder's manifest, made under the same root.
	otherH := h
	otherH.Folder = otherFolder
	otherData, err := encodeManifest(testFolderBarrier(t, root, otherFolder), otherH, index)
	if err != nil {
		t.Fatal(err)
	}
	var other, own manifest
	if err := json.Unmarshal(otherData, &other); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &own); err != nil {
		t.Fatal(err)
	}
	unknownIndex := map[string]string{"k1": "keys-000001", "k2": "keys-000001", "k3": "keys-000009"}
	policyIndex := map[string]string{"k1": "keys-000001", "k2": "keys-000001", "k3": "policy"}
	emptyKeyIndex := map[string]string{"k1": "keys-000001", "k2": "keys-000001", "": "keys-000002"}
	shortIndex := map[string]string{"k1": "keys-000001", "k2": "keys-000001"}
	badKind := o[3]
	badKind.Kind = "secrets"
	slash := o[2]
	slash.Name = "../policy"
	named := o[2]
	named.Name = ManifestName
	tiny := o[2]
	tiny.Size = barrier.Overhead - 1
	huge := o[2]
	huge.Size = MaxObjectSize + 1
	negative := h
	negative.Keys, negative.Objects = -1, []ObjectInfo{o[2], o[3]}
	manyKeys := h
	manyKeys.Keys = 4

	tests := map[string]struct {
		root   *barrier.RootKey
		folder string
		data   []byte
		want   error
	}{
		"another root":            {testRoot(t), testFolder, data, ErrOtherDomain},
		"clear keys count edited": {root, testFolder, editClear(t, data, func(m map[string]any) { m["keys"] = 2 }), ErrTampered},
		"clear sourceHsm edited":  {root, testFolder, editClear(t, data, func(m map[string]any) { m["sourceHsm"] = "otherhsm" }), ErrTampered},
		"clear object sha256 edited": {root, testFolder, editClear(t, data, func(m map[string]any) {
			m["objects"].([]any)[0].(map[string]any)["sha256"] = hex.EncodeToString(make([]byte, 32))
		}), ErrTampered},
		"clear object dropped": {root, testFolder, editClear(t, data, func(m map[string]any) {
			m["objects"] = m["objects"].([]any)[1:]
		}), ErrTampered},
		"clear folder edited":              {root, otherFolder, editClear(t, data, func(m map[string]any) { m["folder"] = otherFolder }), ErrTampered},
		"sealed part of another folder":    {root, testFolder, editClear(t, data, func(m map[string]any) { m["sealed"] = other.Sealed }), ErrTampered},
		"whole manifest of another folder": {root, testFolder, otherData, ErrTampered},
		"opened as another folder":         {root, otherFolder, data, ErrTampered},
		"sealed part flipped": {root, testFolder, editClear(t, data, func(m map[string]any) {
			s := append([]byte(nil), own.Sealed...)
			s[len(s)/2] ^= 1
			m["sealed"] = s
		}), ErrTampered},
		"sealed part missing": {root, testFolder, editClear(t, data, func(m map[string]any) { delete(m, "sealed") }), ErrTampered},
		"not JSON":            {root, testFolder, []byte("not json"), ErrMalformed},
		"truncated JSON":      {root, testFolder, data[:len(data)/2], ErrMalformed},
		"empty":               {root, testFolder, nil, ErrMalformed},
		"JSON array":          {root, testFolder, []byte(`[]`), ErrMalformed},
		"other format":        {root, testFolder, editClear(t, data, func(m map[string]any) { m["format"] = "tresor.backup/v2" }), ErrMalformed},
		"no format":           {root, testFolder, editClear(t, data, func(m map[string]any) { delete(m, "format") }), ErrMalformed},
		"sealed not base64":   {root, testFolder, editClear(t, data, func(m map[string]any) { m["sealed"] = "!!!" }), ErrMalformed},
		"too large":           {root, testFolder, append(append([]byte(nil), data...), bytes.Repeat([]byte(" "), MaxManifestSize)...), ErrMalformed},

		// Consistently sealed, but not self-consistent.
		"index names an unknown object": {root, testFolder, encode(h, unknownIndex), ErrMalformed},
		"index names a policy object":   {root, testFolder, encode(h, policyIndex), ErrMalformed},
		"index has an empty key name":   {root, testFolder, encode(h, emptyKeyIndex), ErrMalformed},
		"index misses a key":            {root, testFolder, encode(h, shortIndex), ErrMalformed},
		"keys count above the objects'": {root, testFolder, encode(manyKeys, index), ErrMalformed},
		"negative keys count":           {root, testFolder, encode(negative, map[string]string{}), ErrMalformed},
		"duplicate objects":             {root, testFolder, encode(withObjects(o[0], o[1], o[1], o[2], o[3]), index), ErrMalformed},
		"duplicate policy objects":      {root, testFolder, encode(withObjects(o[0], o[1], o[2], o[2], o[3]), index), ErrMalformed},
		"unknown object kind":           {root, testFolder, encode(withObjects(o[0], o[1], o[2], badKind), index), ErrMalformed},
		"object name with a slash":      {root, testFolder, encode(withObjects(o[0], o[1], slash, o[3]), index), ErrMalformed},
		"object named manifest":         {root, testFolder, encode(withObjects(o[0], o[1], named, o[3]), index), ErrMalformed},
		"object below the overhead":     {root, testFolder, encode(withObjects(o[0], o[1], tiny, o[3]), index), ErrMalformed},
		"object above the maximum":      {root, testFolder, encode(withObjects(o[0], o[1], huge, o[3]), index), ErrMalformed},
		"too many objects":              {root, testFolder, encode(withObjects(make([]ObjectInfo, MaxObjects+1)...), index), ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gotH, gotIndex, err := openManifest(tc.root, tc.folder, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("openManifest: %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(gotH, Header{}) || gotIndex != nil {
				t.Fatalf("openManifest returned %+v, %v with its error", gotH, gotIndex)
			}
		})
	}
}

func TestReadHeader(t *testing.T) {
	root := testRoot(t)
	h, _, data := testManifest(t, root)
	tests := map[string]struct {
		data    []byte
		want    Header
		wantErr bool
	}{
		"real manifest": {data: data, want: h},
		// The clear header is not authenticated: ReadHeader shows what it says.
		"edited clear header":         {data: editClear(t, data, func(m map[string]any) { m["keys"] = 7 }), want: func() Header { h := h; h.Keys = 7; return h }()},
		"header only, no sealed part": {data: editClear(t, data, func(m map[string]any) { delete(m, "sealed") }), want: h},
		"minimal":                     {data: []byte(`{"format":"` + Format + `"}`), want: Header{Format: Format}},
		"other format":                {data: []byte(`{"format":"tresor.backup/v0","keys":3}`), wantErr: true},
		"no format":                   {data: []byte(`{"keys":3}`), wantErr: true},
		"format of another type":      {data: []byte(`{"format":1}`), wantErr: true},
		"keys of another type":        {data: []byte(`{"format":"` + Format + `","keys":"3"}`), wantErr: true},
		"bad time":                    {data: []byte(`{"format":"` + Format + `","created":"yesterday"}`), wantErr: true},
		"not JSON":                    {data: []byte("mhsm"), wantErr: true},
		"empty":                       {data: nil, wantErr: true},
		"null":                        {data: []byte("null"), wantErr: true},
		"trailing garbage":            {data: append(append([]byte(nil), data...), '}'), wantErr: true},
		"too large":                   {data: append(append([]byte(nil), data...), bytes.Repeat([]byte(" "), MaxManifestSize)...), wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ReadHeader(tc.data)
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) || !reflect.DeepEqual(got, Header{}) {
					t.Fatalf("ReadHeader = %+v, %v; want a zero Header and ErrMalformed", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ReadHeader = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
