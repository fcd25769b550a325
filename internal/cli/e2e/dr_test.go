package e2e_test

// Disaster recovery end to end, as Managed HSM documents it, with the built
// tresor binary as separate server processes, the CLI as separate processes,
// openssl for the custodians' keys and Azurite as the blob store:
//
//  1. create a new instance; 2. init-recovery (the instance makes an RSA
//     exchange key, the operator downloads its certificate); 3. build the
//     upload blob locally from the security-domain file and a quorum of
//     custodian private keys (restore-blob), and upload it; 4. back up the
//     new instance (its rollback point); 5. restore the source's backup.
//
// TestDisasterRecoveryDeletedAndPurged recovers into a second instance of
// the same region, with local principals, and walks through the failure
// paths an operator meets on the way. TestDisasterRecoveryRegionLost kills
// the source region and deletes its data directory, and recovers into a
// new region whose principals come, as in real deployments, from an
// external OIDC issuer both regions trust (the same object ids in both).

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tresor/internal/blob/azuritetest"
)

// keyKinds are the key types of the source, with an algorithm to sign or
// encrypt sample data with.
var keyKinds = []struct {
	name    string
	args    []string
	signAlg string // "" if the key does not sign
	hash    func() hash.Hash
	encAlg  string // "" if the key does not encrypt
}{
	{"rsa2048", []string{"--kty", "RSA-HSM", "--size", "2048"}, "PS256", sha256.New, "RSA-OAEP-256"},
	{"rsa3072", []string{"--kty", "RSA-HSM", "--size", "3072"}, "RS384", sha512.New384, "RSA-OAEP"},
	{"p256", []string{"--kty", "EC-HSM", "--curve", "P-256"}, "ES256", sha256.New, ""},
	{"p384", []string{"--kty", "EC-HSM", "--curve", "P-384"}, "ES384", sha512.New384, ""},
	{"p521", []string{"--kty", "EC-HSM", "--curve", "P-521"}, "ES512", sha512.New, ""},
	{"p256k", []string{"--kty", "EC-HSM", "--curve", "P-256K"}, "ES256K", sha256.New, ""},
	{"aes128", []string{"--kty", "oct-HSM", "--size", "128"}, "", nil, "A128GCM"},
	{"aes192", []string{"--kty", "oct-HSM", "--size", "192"}, "", nil, "A192CBCPAD"},
	{"aes256", []string{"--kty", "oct-HSM", "--size", "256"}, "", nil, "A256GCM"},
}

const (
	sourceKeys = 50
	scopedKey  = "k00-rsa2048" // p2's only key
	otherKey   = "k02-p256"
)

func keyName(i int) string { return fmt.Sprintf("k%02d-%s", i, keyKinds[i%len(keyKinds)].name) }

// source is what the operator kept of the source instance: its
// security-domain file, the custodians, the backup folder, and what the
// test recorded just before the backup.
type source struct {
	sdFile     string
	custodians []custodian
	folder     string
	state      hsmState
	samples    []sample
	probes     map[string]map[string]string // principal → probe → outcome
}

// sample is data signed or encrypted with the source's keys.
type sample struct {
	key, version, alg string
	digest, sig       string // base64
	plain, cipher     string // base64
	iv, tag           string // hex
}

// storage is a blob container and its SAS token.
type storage struct {
	uri, sas string
}

func (s storage) flags() []string {
	return []string{"--storage-resource-uri", s.uri, "--storage-container-SAS-token", s.sas}
}

// buildSource creates and fills the source instance: activated with 3
// custodians (quorum 2), role assignments for the operator, p1 (Crypto
// User at /) and p2 (Crypto User at /keys/k00-…), 50 keys of every type
// with versions, tags, disabled, expired and one soft-deleted, sample
// signatures and ciphertexts; then records its state and what each
// principal may do, and takes a full backup.
func buildSource(t *testing.T, op *cliRunner, hsm string, principals map[string]*cliRunner, st storage) *source {
	t.Helper()
	dir := op.dir
	src := &source{sdFile: filepath.Join(dir, hsm+"-sd.json"), custodians: newCustodians(t, dir, 3)}
	op.run("create", "--hsm-name", hsm, "--resource-group", "rg", "--administrators", op.id.objectID, "--retention-days", "7", "-o", "none")
	op.run("security-domain", "download", "--hsm-name", hsm, "--sd-wrapping-keys", src.custodians[0].cert, src.custodians[1].cert, src.custodians[2].cert,
		"--sd-quorum", "2", "--security-domain-file", src.sdFile, "-o", "none")
	op.run("role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto Officer", "--assignee-object-id", op.id.objectID, "--scope", "/", "-o", "none")
	op.run("role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto User", "--assignee-object-id", op.id.objectID, "--scope", "/", "-o", "none")
	op.run("role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto User", "--assignee-object-id", principals["p1"].id.objectID, "--scope", "/", "-o", "none")
	op.run("role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto User", "--assignee-object-id", principals["p2"].id.objectID, "--scope", "/keys/"+scopedKey, "-o", "none")

	idx := make([]int, sourceKeys)
	for i := range idx {
		idx[i] = i
	}
	parallel(idx, func(i int) {
		k := keyKinds[i%len(keyKinds)]
		args := append([]string{"key", "create", "--hsm-name", hsm, "--name", keyName(i), "--tags", "env=dr", fmt.Sprintf("index=%d", i), "-o", "none"}, k.args...)
		if i%10 == 6 {
			args = append(args, "--expires", "2021-06-01T00:00:00Z")
		}
		op.run(args...)
		for range i % 3 {
			op.run("key", "rotate", "--hsm-name", hsm, "--name", keyName(i), "-o", "none")
		}
		if i%10 == 3 {
			op.run("key", "set-attributes", "--hsm-name", hsm, "--name", keyName(i), "--enabled", "false", "-o", "none")
		}
	})
	op.run("key", "delete", "--hsm-name", hsm, "--name", keyName(sourceKeys-1), "-o", "none")

	// Sample data, with a usable key of each kind (k00…k08 are all
	// enabled and unexpired except k03 and k06, which k12 and k15 replace).
	for n := range keyKinds {
		i := n
		if i%10 == 3 || i%10 == 6 {
			i += len(keyKinds)
		}
		src.samples = append(src.samples, makeSample(t, op, hsm, i))
	}
	src.state = dumpState(t, op, hsm)
	src.probes = probeAll(t, principals, hsm)
	if got := src.probes["p2"]; got["show "+scopedKey] != "ok" || got["show "+otherKey] != "Forbidden" || got["sign "+otherKey] != "Forbidden" {
		t.Fatalf("p2's key-scoped assignment does not work as expected: %v", got)
	}

	var job struct {
		Status    string `json:"status"`
		FolderURL string `json:"folderUrl"`
	}
	op.json(&job, append([]string{"backup", "start", "--hsm-name", hsm}, st.flags()...)...)
	if job.Status != "Succeeded" {
		t.Fatalf("backup: %+v", job)
	}
	src.folder = job.FolderURL[strings.LastIndex(job.FolderURL, "/")+1:]
	return src
}

// makeSample signs or encrypts sample data with key i.
func makeSample(t *testing.T, op *cliRunner, hsm string, i int) sample {
	t.Helper()
	k := keyKinds[i%len(keyKinds)]
	s := sample{key: keyName(i)}
	if k.signAlg != "" {
		h := k.hash()
		h.Write([]byte("disaster recovery sample " + s.key))
		s.alg, s.digest = k.signAlg, base64.StdEncoding.EncodeToString(h.Sum(nil))
		var out struct {
			Kid       string `json:"kid"`
			Signature string `json:"signature"`
		}
		op.json(&out, "key", "sign", "--hsm-name", hsm, "--name", s.key, "--algorithm", s.alg, "--digest", s.digest)
		s.version, s.sig = out.Kid[strings.LastIndex(out.Kid, "/")+1:], out.Signature
		return s
	}
	s.alg, s.plain = k.encAlg, base64.StdEncoding.EncodeToString([]byte("disaster recovery sample "+s.key))
	args := []string{"key", "encrypt", "--hsm-name", hsm, "--name", s.key, "--algorithm", s.alg, "--value", s.plain}
	if strings.Contains(s.alg, "CBC") {
		s.iv = "000102030405060708090a0b0c0d0e0f"
		args = append(args, "--iv", s.iv)
	}
	var out struct {
		Kid    string  `json:"kid"`
		Result string  `json:"result"`
		IV     *string `json:"iv"`
		Tag    *string `json:"tag"`
	}
	op.json(&out, args...)
	s.version, s.cipher = out.Kid[strings.LastIndex(out.Kid, "/")+1:], out.Result
	if out.IV != nil {
		s.iv = *out.IV
	}
	if out.Tag != nil {
		s.tag = *out.Tag
	}
	return s
}

// checkSamples verifies the old signatures and decrypts the old
// ciphertexts with the recovered instance.
func checkSamples(t *testing.T, op *cliRunner, hsm string, samples []sample) {
	t.Helper()
	for _, s := range samples {
		if s.sig != "" {
			var out struct {
				Valid bool `json:"isValid"`
			}
			op.json(&out, "key", "verify", "--hsm-name", hsm, "--name", s.key, "--version", s.version, "--algorithm", s.alg, "--digest", s.digest, "--signature", s.sig)
			if !out.Valid {
				t.Errorf("the signature made with %s/%s before the disaster does not verify", s.key, s.version)
			}
			continue
		}
		args := []string{"key", "decrypt", "--hsm-name", hsm, "--name", s.key, "--version", s.version, "--algorithm", s.alg, "--value", s.cipher}
		if s.iv != "" {
			args = append(args, "--iv", s.iv)
		}
		if s.tag != "" {
			args = append(args, "--tag", s.tag)
		}
		var out struct {
			Result string `json:"result"`
		}
		op.json(&out, args...)
		if out.Result != s.plain {
			t.Errorf("the ciphertext made with %s/%s before the disaster decrypts to %q, want %q", s.key, s.version, out.Result, s.plain)
		}
	}
}

// hsmState is what an instance holds, as the operator sees it through
// the CLI, with the instance's URL replaced by "{hsm}".
type hsmState struct {
	Keys            map[string]any // name → {"current": key show, "versions": list-versions}
	Deleted         any            // key list-deleted
	RoleAssignments any            // role assignment list
	RoleDefinitions any            // role definition list --custom-role-only
}

func dumpState(t *testing.T, op *cliRunner, hsm string) hsmState {
	t.Helper()
	base := strings.TrimRight(string(bytes.TrimSpace(op.run("show", "--hsm-name", hsm, "--query", "properties.hsmUri", "-o", "tsv"))), "/")
	get := func(args ...string) any {
		out := bytes.ReplaceAll(op.run(args...), []byte(base), []byte("{hsm}"))
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("tresor %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return sortLists(v)
	}
	var names []string
	op.json(&names, "key", "list", "--hsm-name", hsm, "--query", "[].name")
	st := hsmState{Keys: map[string]any{}}
	var mu = make(chan struct{}, 1)
	parallel(names, func(n string) {
		k := map[string]any{
			"current":  get("key", "show", "--hsm-name", hsm, "--name", n),
			"versions": get("key", "list-versions", "--hsm-name", hsm, "--name", n),
		}
		mu <- struct{}{}
		st.Keys[n] = k
		<-mu
	})
	st.Deleted = get("key", "list-deleted", "--hsm-name", hsm)
	st.RoleAssignments = get("role", "assignment", "list", "--hsm-name", hsm)
	st.RoleDefinitions = get("role", "definition", "list", "--hsm-name", hsm, "--custom-role-only", "true")
	return st
}

// sortLists sorts every list of objects by kid, id or name, so that a
// state compares equal whatever order a list came in.
func sortLists(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = sortLists(e)
		}
	case []any:
		for i, e := range x {
			x[i] = sortLists(e)
		}
		key := func(e any) string {
			m, _ := e.(map[string]any)
			for _, f := range []string{"kid", "id", "name"} {
				if s, ok := m[f].(string); ok {
					return s
				}
			}
			b, _ := json.Marshal(e)
			return string(b)
		}
		slices.SortFunc(x, func(a, b any) int { return strings.Compare(key(a), key(b)) })
	}
	return v
}

// compareStates fails the test with the first differing lines.
func compareStates(t *testing.T, want, got hsmState) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	w, _ := json.MarshalIndent(want, "", " ")
	g, _ := json.MarshalIndent(got, "", " ")
	wl, gl := strings.Split(string(w), "\n"), strings.Split(string(g), "\n")
	for i := range min(len(wl), len(gl)) {
		if wl[i] != gl[i] {
			lo, hi := max(0, i-8), min(len(wl), i+4)
			t.Fatalf("the recovered state differs from the state before the disaster at line %d:\nwant:\n%s\ngot:\n%s",
				i+1, strings.Join(wl[lo:hi], "\n"), strings.Join(gl[lo:min(len(gl), i+4)], "\n"))
		}
	}
	t.Fatalf("the recovered state differs from the state before the disaster: %d lines, want %d", len(gl), len(wl))
}

// probeAll records what each principal may do in the instance: read and
// sign with the key-scoped key and with another, list keys and role
// assignments. Each outcome is "ok" or the error code the CLI printed.
func probeAll(t *testing.T, principals map[string]*cliRunner, hsm string) map[string]map[string]string {
	t.Helper()
	digest := base64.StdEncoding.EncodeToString(make([]byte, 32))
	probes := map[string][]string{
		"show " + scopedKey: {"key", "show", "--hsm-name", hsm, "--name", scopedKey},
		"show " + otherKey:  {"key", "show", "--hsm-name", hsm, "--name", otherKey},
		"sign " + scopedKey: {"key", "sign", "--hsm-name", hsm, "--name", scopedKey, "--algorithm", "PS256", "--digest", digest},
		"sign " + otherKey:  {"key", "sign", "--hsm-name", hsm, "--name", otherKey, "--algorithm", "ES256", "--digest", digest},
		"list keys":         {"key", "list", "--hsm-name", hsm},
		"list assignments":  {"role", "assignment", "list", "--hsm-name", hsm},
		"purge deleted key": {"key", "purge", "--hsm-name", hsm, "--name", "never-existed"},
	}
	out := map[string]map[string]string{}
	for name, c := range principals {
		res := map[string]string{}
		for p, args := range probes {
			_, errOut, code := c.exec(args...)
			res[p] = "ok"
			if code != 0 {
				res[p] = errorCode(string(errOut))
			}
		}
		out[name] = res
	}
	return out
}

// errorCode is the code of "tresor: error: <code>: <message>".
func errorCode(stderr string) string {
	line, _, _ := strings.Cut(strings.TrimPrefix(stderr, "tresor: error: "), "\n")
	code, _, _ := strings.Cut(line, ":")
	return code
}

// recoverInto runs steps 1–5 into a new instance hsm and returns the
// restore's job.
func recoverInto(t *testing.T, op *cliRunner, hsm string, src *source, st storage) {
	t.Helper()
	dir := op.dir
	op.run("create", "--hsm-name", hsm, "--resource-group", "rg-dr", "--administrators", op.id.objectID, "--retention-days", "7", "-o", "none")
	exchange := filepath.Join(dir, hsm+"-exchange.cer")
	op.run("security-domain", "init-recovery", "--hsm-name", hsm, "--sd-exchange-key", exchange, "-o", "none")
	blobFile := filepath.Join(dir, hsm+"-restore-blob.json")
	op.run("security-domain", "restore-blob", "--sd-file", src.sdFile, "--sd-exchange-key", exchange,
		"--sd-wrapping-keys", src.custodians[0].key, src.custodians[2].key, "--sd-file-restore-blob", blobFile, "-o", "none")
	op.run("security-domain", "upload", "--hsm-name", hsm, "--sd-file", blobFile, "--restore-blob", "-o", "none")
	backupOK(t, op, hsm, st)
	restoreOK(t, op, hsm, st, src.folder)
}

func backupOK(t *testing.T, op *cliRunner, hsm string, st storage) string {
	t.Helper()
	var job struct {
		Status    string `json:"status"`
		FolderURL string `json:"folderUrl"`
	}
	op.json(&job, append([]string{"backup", "start", "--hsm-name", hsm}, st.flags()...)...)
	if job.Status != "Succeeded" {
		t.Fatalf("backup of %s: %+v", hsm, job)
	}
	return job.FolderURL
}

func restoreOK(t *testing.T, op *cliRunner, hsm string, st storage, folder string) {
	t.Helper()
	var job struct {
		Status string `json:"status"`
	}
	op.json(&job, append([]string{"restore", "start", "--hsm-name", hsm, "--backup-folder", folder}, st.flags()...)...)
	if job.Status != "Succeeded" {
		t.Fatalf("restore into %s: %+v", hsm, job)
	}
}

// checkRecovered compares the recovered instance with the source.
func checkRecovered(t *testing.T, op *cliRunner, hsm string, src *source, principals map[string]*cliRunner, regions ...*region) {
	t.Helper()
	compareStates(t, src.state, dumpState(t, op, hsm))
	if n := len(src.state.Keys); n != sourceKeys-1 {
		t.Fatalf("the source held %d live keys, want %d", n, sourceKeys-1)
	}
	checkSamples(t, op, hsm, src.samples)
	if got := probeAll(t, principals, hsm); !reflect.DeepEqual(got, src.probes) {
		t.Errorf("the principals' rights changed:\nbefore: %v\nafter:  %v", src.probes, got)
	}
	// No custodian private key reached a server: not in what the CLI
	// sent (the proxies saw every request, including the upload), not in
	// the servers' logs.
	for _, r := range regions {
		sent := r.proxy.sent()
		if !bytes.Contains(sent, []byte("/securitydomain/upload")) && !r.killed {
			t.Fatalf("region %s's proxy did not see the security-domain upload", r.name)
		}
		logs := r.log()
		for ci, c := range src.custodians {
			for _, s := range c.secrets {
				if bytes.Contains(sent, s) {
					t.Errorf("custodian %d's private key material was sent to region %s", ci, r.name)
				}
				if bytes.Contains(logs, s) {
					t.Errorf("custodian %d's private key material is in region %s's log", ci, r.name)
				}
			}
		}
	}
}

func startAzurite(t *testing.T) (*azuritetest.Server, storage) {
	t.Helper()
	az := azuritetest.Start(t)
	name := "dr" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ""))
	name = name[:min(len(name), 60)]
	az.CreateContainer(t, name)
	return az, storage{uri: az.URL() + "/" + name, sas: az.SAS(t, name, "racwdl", time.Now().Add(2*time.Hour))}
}

func TestDisasterRecoveryDeletedAndPurged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	t.Parallel()
	az, st := startAzurite(t)
	work := t.TempDir()
	a := startRegion(t, "eastus2", filepath.Join(work, "region-a"))
	admin := identity{name: "operator", clientID: a.env["TRESOR_CLIENT_ID"], secret: a.env["TRESOR_CLIENT_SECRET"]}
	op := a.cli(admin, work)
	var acct struct {
		ObjectID string `json:"objectId"`
	}
	op.json(&acct, "account", "show")
	op.id.objectID = acct.ObjectID

	principals := map[string]*cliRunner{"operator": op}
	for _, name := range []string{"p1", "p2"} {
		var p struct {
			ObjectID     string `json:"objectId"`
			ClientID     string `json:"clientId"`
			ClientSecret string `json:"clientSecret"`
		}
		op.json(&p, "principal", "create", "--display-name", name)
		principals[name] = a.cli(identity{name: name, objectID: p.ObjectID, clientID: p.ClientID, secret: p.ClientSecret}, work)
	}
	src := buildSource(t, op, "contoso", principals, st)

	// The disaster: contoso is deleted and purged.
	op.run("delete", "--hsm-name", "contoso")
	op.run("purge", "--hsm-name", "contoso", "--location", "eastus2")
	if out := op.run("list-deleted", "--query", "[].name", "-o", "tsv"); len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("deleted instances after the purge: %s", out)
	}

	// Steps 1–5 into contoso2, meeting each failure an operator may hit on
	// the way; each leaves the instance as it was and says what is wrong.
	const hsm = "contoso2"
	op.run("create", "--hsm-name", hsm, "--resource-group", "rg-dr", "--administrators", op.id.objectID, "--retention-days", "7", "-o", "none")
	restoreArgs := func(folder string, s storage) []string {
		return append([]string{"restore", "start", "--hsm-name", hsm, "--backup-folder", folder}, s.flags()...)
	}
	activation := func() string {
		return strings.TrimSpace(string(op.run("show", "--hsm-name", hsm, "--query", "properties.securityDomainProperties.activationStatus", "-o", "tsv")))
	}
	exchange := filepath.Join(work, "exchange.cer")
	op.run("security-domain", "init-recovery", "--hsm-name", hsm, "--sd-exchange-key", exchange, "-o", "none")
	before := activation()

	// Restoring before the security domain is uploaded.
	msg := op.fail(2, restoreArgs(src.folder, st)...)
	wantMessage(t, "restore before the upload", msg, "HSMNotActivated", "in recovery mode", "upload its security domain")
	// Fewer custodian keys than the quorum: refused on the operator's
	// machine, both when making the blob and when uploading directly.
	blobFile := filepath.Join(work, "restore-blob.json")
	msg = op.fail(1, "security-domain", "restore-blob", "--sd-file", src.sdFile, "--sd-exchange-key", exchange,
		"--sd-wrapping-keys", src.custodians[1].key, "--sd-file-restore-blob", blobFile)
	wantMessage(t, "restore-blob below the quorum", msg, "needs 2 of its custodians' private keys; --sd-wrapping-keys gives 1")
	msg = op.fail(1, "security-domain", "upload", "--hsm-name", hsm, "--sd-file", src.sdFile, "--sd-exchange-key", exchange,
		"--sd-wrapping-keys", src.custodians[1].key)
	wantMessage(t, "upload below the quorum", msg, "needs 2 of its custodians' private keys; --sd-wrapping-keys gives 1")
	if _, err := os.Stat(blobFile); err == nil {
		t.Fatal("restore-blob below the quorum wrote a blob")
	}
	if got := activation(); got != before {
		t.Fatalf("activation status %q after the refused steps, want %q", got, before)
	}

	op.run("security-domain", "restore-blob", "--sd-file", src.sdFile, "--sd-exchange-key", exchange,
		"--sd-wrapping-keys", src.custodians[1].key, src.custodians[2].key, "--sd-file-restore-blob", blobFile, "-o", "none")
	op.run("security-domain", "upload", "--hsm-name", hsm, "--sd-file", blobFile, "--restore-blob", "-o", "none")
	if got := activation(); got != "Active" {
		t.Fatalf("activation status %q after the upload", got)
	}
	for _, role := range []string{"Managed HSM Crypto User", "Managed HSM Crypto Officer"} {
		op.run("role", "assignment", "create", "--hsm-name", hsm, "--role", role, "--assignee-object-id", op.id.objectID, "--scope", "/", "-o", "none")
	}
	empty := dumpState(t, op, hsm)

	// A restore without a rollback backup of the new instance.
	msg = op.fail(2, restoreArgs(src.folder, st)...)
	wantMessage(t, "restore without a rollback point", msg, "BackupRequired")
	backupOK(t, op, hsm, st)
	// A folder that is not in the container, and an expired SAS token.
	msg = op.fail(2, restoreArgs("mhsm-contoso-2001010100000000", st)...)
	wantMessage(t, "missing folder", msg, "mhsm-contoso-2001010100000000")
	expired := storage{uri: st.uri, sas: az.SAS(t, st.uri[strings.LastIndex(st.uri, "/")+1:], "rl", time.Now().Add(-time.Hour))}
	msg = op.fail(2, restoreArgs(src.folder, expired)...)
	wantMessage(t, "expired SAS", msg, "expired")
	compareStates(t, empty, dumpState(t, op, hsm))

	// A second restore while one runs: the first is held at its first
	// read of a keys object (through a gate in front of Azurite) while the
	// second is refused; then the first completes.
	gate := newBlobGate(t, az.Addr())
	gated := storage{uri: gate.url(azuritetest.Account) + st.uri[strings.LastIndex(st.uri, "/"):], sas: st.sas}
	gate.close()
	first := make(chan []byte, 1)
	go func() {
		out, errOut, code := op.exec(restoreArgs(src.folder, gated)...)
		if code != 0 {
			out = append([]byte(fmt.Sprintf("exit %d: ", code)), errOut...)
		}
		first <- out
	}()
	select {
	case <-gate.held:
	case <-time.After(60 * time.Second):
		gate.open()
		t.Fatalf("the restore did not read a keys object: %s", <-first)
	}
	msg = op.fail(2, restoreArgs(src.folder, st)...)
	wantMessage(t, "second restore", msg, "is being restored", "until it has finished")
	gate.open()
	var job struct {
		Status string `json:"status"`
	}
	if out := <-first; json.Unmarshal(out, &job) != nil || job.Status != "Succeeded" {
		t.Fatalf("the held restore: %s", out)
	}

	checkRecovered(t, op, hsm, src, principals, a)

	// A backup made with another security domain: restoring it into an
	// instance of this one fails and changes nothing.
	restoreOtherDomain(t, op, st, src)
}

// restoreOtherDomain restores the source's backup into an instance that
// holds another security domain.
func restoreOtherDomain(t *testing.T, op *cliRunner, st storage, src *source) {
	t.Helper()
	const other = "fabrikam"
	certs := newCustodians(t, t.TempDir(), 3)
	op.run("create", "--hsm-name", other, "--resource-group", "rg", "--administrators", op.id.objectID, "--retention-days", "7", "-o", "none")
	op.run("security-domain", "download", "--hsm-name", other, "--sd-wrapping-keys", certs[0].cert, certs[1].cert, certs[2].cert,
		"--sd-quorum", "2", "--security-domain-file", filepath.Join(t.TempDir(), "other-sd.json"), "-o", "none")
	for _, role := range []string{"Managed HSM Crypto User", "Managed HSM Crypto Officer"} {
		op.run("role", "assignment", "create", "--hsm-name", other, "--role", role, "--assignee-object-id", op.id.objectID, "--scope", "/", "-o", "none")
	}
	op.run("key", "create", "--hsm-name", other, "--name", "own-key", "--kty", "EC-HSM", "--curve", "P-256", "-o", "none")
	backupOK(t, op, other, st)
	before := dumpState(t, op, other)
	msg := op.fail(2, append([]string{"restore", "start", "--hsm-name", other, "--backup-folder", src.folder}, st.flags()...)...)
	wantMessage(t, "another security domain", msg, "security domain")
	compareStates(t, before, dumpState(t, op, other))
}

func wantMessage(t *testing.T, what, msg string, parts ...string) {
	t.Helper()
	if !strings.HasPrefix(msg, "tresor: error: ") {
		t.Fatalf("%s: stderr %q does not start with tresor: error:", what, msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Fatalf("%s: message %q does not say %q", what, strings.TrimSpace(msg), p)
		}
	}
	t.Logf("%s: %s", what, strings.TrimSpace(msg))
}

func TestDisasterRecoveryRegionLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	t.Parallel()
	_, st := startAzurite(t)
	work := t.TempDir()
	// Both regions trust the same external issuer, as two deployments of
	// one organisation trust its identity provider: the operator and the
	// principals have the same object ids in both.
	is := newIssuer(t)
	const operatorID = "0b6d2b8e-5d1c-4c3e-9a51-3f3c1d2e4a10"
	cfg := is.config(t, operatorID)
	ids := map[string]identity{
		"operator": is.identity("operator", operatorID),
		"p1":       is.identity("p1", "6f1e9d4a-2c3b-4e5f-8a7b-9c0d1e2f3a4b"),
		"p2":       is.identity("p2", "1a2b3c4d-5e6f-4a8b-9c0d-e1f2a3b4c5d6"),
	}
	aDir := filepath.Join(work, "region-a")
	a := startRegion(t, "eastus2", aDir, "--config", cfg)
	clis := func(r *region) map[string]*cliRunner {
		m := map[string]*cliRunner{}
		for n, id := range ids {
			m[n] = r.cli(id, work)
		}
		return m
	}
	pa := clis(a)
	src := buildSource(t, pa["operator"], "contoso", pa, st)

	// The disaster: region A's machine is gone, and its disk with it.
	a.kill()
	if err := os.RemoveAll(aDir); err != nil {
		t.Fatal(err)
	}

	b := startRegion(t, "westus2", filepath.Join(work, "region-b"), "--config", cfg)
	pb := clis(b)
	recoverInto(t, pb["operator"], "contoso", src, st)
	checkRecovered(t, pb["operator"], "contoso", src, pb, a, b)
}
