package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/client/clienttest"
	"tresor/internal/securitydomain"
	"tresor/internal/wire"
)

// azureSD is the real Azure security-domain test vector: sdfile.json,
// encrypted to sd1-sd3 with quorum 2, and an unrelated exchange pair.
var azureSD = filepath.Join("..", "securitydomain", "testdata", "azure-security-domain")

// copyFiles copies files (name → source path) into dir.
func copyFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// custodianDir returns a directory with the Azure vector's files.
func custodianDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"sdfile.json", "sd1.cer", "sd1.pem", "sd2.cer", "sd2.pem", "sd3.cer", "sd3.pem", "exchange.cer", "exchange.key"} {
		files[n] = filepath.Join(azureSD, n)
	}
	copyFiles(t, dir, files)
	return dir
}

// fakeHSM serves the security-domain routes of HSM hosts.
type fakeHSM struct {
	mu        sync.Mutex
	first     string // the status the upload answers with; InProgress if empty
	final     string // the status the pending routes report
	details   string
	exchange  []byte // exchange certificate DER
	downloads []wire.CertificateInfo
	uploads   []string
	requests  int
}

func (f *fakeHSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	write := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /securitydomain/download":
		var req wire.CertificateInfo
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.downloads = append(f.downloads, req)
		w.Header().Set("Azure-AsyncOperation", "https://"+r.Host+"/securitydomain/download/pending")
		write(http.StatusAccepted, wire.SecurityDomainValue{Value: `{"EncData": "the file"}`})
	case "GET /securitydomain/upload":
		jwk, _ := json.Marshal(map[string]any{"kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(f.exchange)}})
		write(http.StatusOK, wire.TransferKey{KeyFormat: "jwk", TransferKey: string(jwk)})
	case "POST /securitydomain/upload":
		var req wire.SecurityDomainValue
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.uploads = append(f.uploads, req.Value)
		w.Header().Set("Azure-AsyncOperation", "https://"+r.Host+"/securitydomain/upload/pending")
		if f.first != "" {
			write(http.StatusAccepted, wire.SecurityDomainStatus{Status: f.first, StatusDetails: f.details})
			return
		}
		write(http.StatusAccepted, wire.SecurityDomainStatus{Status: "InProgress", StatusDetails: "uploading"})
	case "GET /securitydomain/download/pending", "GET /securitydomain/upload/pending":
		write(http.StatusOK, wire.SecurityDomainStatus{Status: f.final, StatusDetails: f.details})
	default:
		write(http.StatusNotFound, wire.Error{Error: wire.ErrorDetail{Code: "NotFound", Message: r.URL.Path}})
	}
}

func (f *fakeHSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func sdRegion(t *testing.T) (*clienttest.Region, *fakeHSM, map[string]string) {
	t.Helper()
	r, env := region(t)
	f := &fakeHSM{final: "Success", details: "done"}
	r.HSM = f
	return r, f, env
}

// writeCert writes a self-signed certificate for key as PEM.
func writeCert(t *testing.T, path string, key any, pub any) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSecurityDomainDownload(t *testing.T) {
	_, f, env := sdRegion(t)
	dir := custodianDir(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	out := p("sd.json")
	stdout := ok(t, env, "security-domain", "download", "--hsm-name", "hsm1",
		"--sd-wrapping-keys", p("sd1.cer"), p("sd2.cer"), "--sd-wrapping-keys", p("sd3.cer"),
		"--sd-quorum", "2", "--security-domain-file", out)
	if stdout != "{\n  \"status\": \"Success\",\n  \"statusDetails\": \"done\"\n}\n" {
		t.Errorf("output %q, want az's status object", stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil || string(data) != `{"EncData": "the file"}` {
		t.Fatalf("file %q, %v: want the value verbatim", data, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fi.Mode().Perm())
	}
	if len(f.downloads) != 1 {
		t.Fatalf("%d downloads", len(f.downloads))
	}
	req := f.downloads[0]
	if *req.Required != 2 || len(req.Certificates) != 3 {
		t.Fatalf("request %+v", req)
	}
	for i, c := range req.Certificates {
		if c.Kty != "RSA" || c.Alg != "RSA-OAEP-256" || strings.Join(c.KeyOps, ",") != "verify,encrypt,wrapKey" ||
			c.N == "" || c.E != "AQAB" || len(c.X5C) != 1 || c.X5T == "" || c.Kid != "" {
			t.Errorf("certificates[%d] = %+v", i, c)
		}
	}
	if req.Certificates[0].X5TS256 != "vODZF4xDVWHyFob2nfI5Li1MPOmEhVJqlnojTK_HuYg" {
		t.Errorf("x5t#S256 of sd1 = %s", req.Certificates[0].X5TS256)
	}

	// An existing file is refused before the server is asked.
	n := f.count()
	res := tresor(t, env, "security-domain", "download", "--hsm-name", "hsm1", "--sd-wrapping-keys", p("sd1.cer"), p("sd2.cer"), p("sd3.cer"),
		"--sd-quorum", "2", "--security-domain-file", out)
	if res.code != 1 || !strings.Contains(res.stderr, "tresor: error: File named '"+out+"' already exists.") || f.count() != n {
		t.Errorf("existing file: %+v, %d requests", res, f.count()-n)
	}

	// --no-wait writes at once and prints nothing.
	res = tresor(t, env, "security-domain", "download", "--id", "https://hsm1."+clienttest.DNSSuffix+":"+port(t, env), "--no-wait",
		"--sd-wrapping-keys", p("sd1.cer"), p("sd2.cer"), p("sd3.cer"), "--sd-quorum", "3", "--security-domain-file", p("nowait.json"))
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("--no-wait: %+v", res)
	}
	if _, err := os.Stat(p("nowait.json")); err != nil {
		t.Fatal(err)
	}

	// Failed: exit 2 with the details, no file.
	f.final, f.details = "Failed", "the HSM could not be activated"
	res = tresor(t, env, "security-domain", "download", "--hsm-name", "hsm1", "--sd-wrapping-keys", p("sd1.cer"), p("sd2.cer"), p("sd3.cer"),
		"--sd-quorum", "2", "--security-domain-file", p("failed.json"))
	if res.code != 2 || res.stderr != "tresor: error: SecurityDomainDownloadFailed: the HSM could not be activated\n" {
		t.Errorf("failed download: %+v", res)
	}
	if _, err := os.Stat(p("failed.json")); err == nil {
		t.Error("the file of a failed download was written")
	}
}

// port returns the fake region's port.
func port(t *testing.T, env map[string]string) string {
	t.Helper()
	i := strings.LastIndexByte(env["TRESOR_SERVER"], ':')
	return env["TRESOR_SERVER"][i+1:]
}

func TestSecurityDomainDownloadRefusals(t *testing.T) {
	_, f, env := sdRegion(t)
	dir := custodianDir(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	writeCert(t, p("small.cer"), small, &small.PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeCert(t, p("ec.cer"), ec, &ec.PublicKey)
	// A second certificate for sd1's key: another certificate, the same key.
	pemKey, err := os.ReadFile(p("sd1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sd1Key, err := securitydomain.ParsePrivateKeyPEM(pemKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeCert(t, p("sd1-again.cer"), sd1Key, &sd1Key.PublicKey)
	if err := os.Mkdir(p("adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	certs := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, p(n))
		}
		return out
	}
	base := []string{"security-domain", "download", "--hsm-name", "hsm1", "--security-domain-file", p("out.json")}
	tests := map[string]struct {
		args []string
		want string
	}{
		"two certificates": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer")...),
			"The number of wrapping keys (N) should be in range [3, 10]"},
		"eleven certificates": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "sd3.cer", "sd1.cer", "sd2.cer", "sd3.cer", "sd1.cer", "sd2.cer", "sd3.cer", "sd1.cer", "sd2.cer")...),
			"should be in range [3, 10]"},
		"quorum 1": {append([]string{"--sd-quorum", "1", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "sd3.cer")...),
			"The quorum of security domain (M) should be in range [2, 10]"},
		"quorum above N": {append([]string{"--sd-quorum", "4", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "sd3.cer")...),
			"--sd-quorum 4 is more than the 3 wrapping keys"},
		"no quorum": {append([]string{"--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "sd3.cer")...),
			"--sd-quorum is required"},
		"RSA-1024": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "small.cer")...),
			"small.cer: the certificate's RSA key has 1024 bits: only RSA >= 2048 bits is supported"},
		"EC": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("ec.cer", "sd2.cer", "sd3.cer")...),
			"ec.cer: the certificate's key is ECDSA, not RSA"},
		"duplicate": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "sd1.cer")...),
			"are the same certificate"},
		"one key in two certificates": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd1-again.cer", "sd2.cer")...),
			"sd1.cer and " + p("sd1-again.cer") + " are certificates for the same key: each custodian needs their own key pair"},
		"private key instead of certificate": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.pem", "sd2.cer", "sd3.cer")...),
			"sd1.pem: no CERTIFICATE in the PEM file"},
		"missing file": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "nope.cer")...),
			"nope.cer does not exist."},
		"directory": {append([]string{"--sd-quorum", "2", "--sd-wrapping-keys"}, certs("sd1.cer", "sd2.cer", "adir")...),
			"adir is a directory. A file is required."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, env, append(base, tc.args...)...)
			if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", res.code, res.stderr, tc.want)
			}
		})
	}
	for name, args := range map[string][]string{
		"no HSM":    {"security-domain", "download", "--sd-quorum", "2", "--security-domain-file", p("o.json")},
		"both":      {"security-domain", "download", "--hsm-name", "h", "--id", "https://h." + clienttest.DNSSuffix},
		"bad id":    {"security-domain", "download", "--id", "https://h." + clienttest.DNSSuffix + "/keys"},
		"http id":   {"security-domain", "download", "--id", "http://h." + clienttest.DNSSuffix},
		"no output": {"security-domain", "download", "--hsm-name", "h"},
	} {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, env, args...)
			if res.code != 1 || !strings.Contains(res.stderr, "tresor: hint: see 'tresor security-domain download --help'") {
				t.Fatalf("%+v", res)
			}
		})
	}
	if f.count() != 0 {
		t.Errorf("%d requests reached the HSM", f.count())
	}
	if _, err := os.Stat(p("out.json")); err == nil {
		t.Error("out.json was written")
	}
}

func TestSecurityDomainInitRecovery(t *testing.T) {
	_, f, env := sdRegion(t)
	dir := t.TempDir()
	der, _ := pem.Decode(mustRead(t, filepath.Join(azureSD, "exchange.cer")))
	f.exchange = der.Bytes
	out := filepath.Join(dir, "ex.cer")
	if stdout := ok(t, env, "security-domain", "init-recovery", "--hsm-name", "hsm2", "--sd-exchange-key", out); stdout != "" {
		t.Errorf("output %q", stdout)
	}
	got := mustRead(t, out)
	if string(got) != string(securitydomain.CertificatePEM(der.Bytes)) {
		t.Errorf("exchange certificate file:\n%s", got)
	}
	lines := strings.Split(string(got), "\n")
	if len(lines[1]) != 65 || strings.HasSuffix(string(got), "\n") {
		t.Errorf("not az's PEM: first line %d long, trailing newline %v", len(lines[1]), strings.HasSuffix(string(got), "\n"))
	}
	n := f.count()
	res := tresor(t, env, "security-domain", "init-recovery", "--hsm-name", "hsm2", "--sd-exchange-key", out)
	if res.code != 1 || !strings.Contains(res.stderr, "already exists.") || f.count() != n {
		t.Errorf("existing file: %+v", res)
	}
	// A transfer key that is no usable certificate is not written.
	f.exchange = []byte("junk")
	res = tresor(t, env, "security-domain", "init-recovery", "--hsm-name", "hsm2", "--sd-exchange-key", filepath.Join(dir, "junk.cer"))
	if res.code != 1 || !strings.Contains(res.stderr, "exchange certificate is not usable") {
		t.Errorf("junk certificate: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "junk.cer")); err == nil {
		t.Error("junk.cer written")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// openBlob opens a restore blob with the Azure vector's exchange key.
func openBlob(t *testing.T, blob []byte) []securitydomain.Blob {
	t.Helper()
	cert, err := securitydomain.ParseCertificatePEM(mustRead(t, filepath.Join(azureSD, "exchange.cer")))
	if err != nil {
		t.Fatal(err)
	}
	key, err := securitydomain.ParsePrivateKeyPEM(mustRead(t, filepath.Join(azureSD, "exchange.key")), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := securitydomain.OpenUploadBlob(blob, cert.DER, key)
	if err != nil {
		t.Fatalf("the restore blob does not open with the exchange key: %v", err)
	}
	return blobs
}

func TestSecurityDomainRestoreBlob(t *testing.T) {
	dir := custodianDir(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	copyFiles(t, dir, map[string]string{
		"enc.pem":  filepath.Join("..", "securitydomain", "testdata", "keys", "sd1-pkcs8-aes256.pem"), // sd1's key, password "secret"
		"enc.cer":  filepath.Join(azureSD, "sd1.cer"),
		"odd.pem":  filepath.Join(azureSD, "sd1.pem"), // sd1's key next to sd2's certificate
		"odd.cer":  filepath.Join(azureSD, "sd2.cer"),
		"lone.pem": filepath.Join(azureSD, "sd3.pem"),
	})
	// Offline: no server, no credentials.
	env := map[string]string{"TRESOR_CONFIG_DIR": t.TempDir()}
	restore := func(out string, keys ...string) result {
		args := []string{"security-domain", "restore-blob", "--sd-file", p("sdfile.json"), "--sd-exchange-key", p("exchange.cer"),
			"--sd-file-restore-blob", p(out), "--sd-wrapping-keys"}
		return tresor(t, env, append(args, keys...)...)
	}

	res := restore("blob.json", p("sd3.pem"), p("sd1.pem"))
	if res.code != 0 || res.stdout != "" || res.stderr != "" {
		t.Fatalf("restore-blob: %+v", res)
	}
	if fi, _ := os.Stat(p("blob.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("blob mode %v", fi.Mode().Perm())
	}
	got := openBlob(t, mustRead(t, p("blob.json")))
	// The blobs are the Azure file's, as the library opens it.
	file, err := securitydomain.ParseFile(mustRead(t, p("sdfile.json")))
	if err != nil {
		t.Fatal(err)
	}
	sd1cert, _ := securitydomain.ParseCertificatePEM(mustRead(t, p("sd1.cer")))
	sd1key, _ := securitydomain.ParsePrivateKeyPEM(mustRead(t, p("sd1.pem")), nil)
	sd2cert, _ := securitydomain.ParseCertificatePEM(mustRead(t, p("sd2.cer")))
	sd2key, _ := securitydomain.ParsePrivateKeyPEM(mustRead(t, p("sd2.pem")), nil)
	want, err := file.Open([]securitydomain.Custodian{{Cert: sd1cert, Key: sd1key}, {Cert: sd2cert, Key: sd2key}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d blobs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Tag != want[i].Tag || string(got[i].Data) != string(want[i].Data) {
			t.Errorf("blob %d (%s) differs", i, want[i].Tag)
		}
	}

	// An encrypted key with its password; "" for a key without one.
	res = tresor(t, env, "security-domain", "restore-blob", "--sd-file", p("sdfile.json"), "--sd-exchange-key", p("exchange.cer"),
		"--sd-wrapping-keys", p("sd2.pem"), p("enc.pem"), "--passwords", "", "secret", "--sd-file-restore-blob", p("enc-blob.json"))
	if res.code != 0 {
		t.Fatalf("encrypted key: %+v", res)
	}
	openBlob(t, mustRead(t, p("enc-blob.json")))

	tests := map[string]struct {
		args []string
		want []string
	}{
		"one key": {[]string{"--sd-wrapping-keys", p("sd1.pem")},
			[]string{"tresor: error: Insufficient shares available: the security domain needs 2 of its custodians' private keys; --sd-wrapping-keys gives 1\n"}},
		"a wrong key": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("exchange.key")},
			[]string{"tresor: error: Insufficient shares available: the private keys given decrypt fewer than the 2 shares"}},
		"the same key twice": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("sd1.pem")},
			[]string{"Insufficient shares available"}},
		"key and certificate differ": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("odd.pem")},
			[]string{"the private key " + p("odd.pem") + " does not belong to the certificate " + p("odd.cer")}},
		"no certificate next to the key": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("lone.pem")},
			[]string{"Certificate " + p("lone.cer") + " does not exist. You should put it into the same folder with your wrapping keys"}},
		"missing key": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("nope.pem")},
			[]string{"SD wrapping key " + p("nope.pem") + " does not exist."}},
		"no password": {[]string{"--sd-wrapping-keys", p("enc.pem"), p("sd2.pem")},
			[]string{"enc.pem: the private key is encrypted and no password was given", "tresor: hint: give the passwords with --passwords"}},
		"wrong password": {[]string{"--sd-wrapping-keys", p("enc.pem"), p("sd2.pem"), "--passwords", "wrong"},
			[]string{"enc.pem: incorrect password for the private key"}},
		"too many passwords": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("sd2.pem"), "--passwords", "a", "b", "c"},
			[]string{"--passwords: 3 passwords for 2 wrapping keys"}},
		"no wrapping keys": {nil, []string{"Please specify --sd-wrapping-keys"}},
		"output exists": {[]string{"--sd-wrapping-keys", p("sd1.pem"), p("sd2.pem"), "--sd-file-restore-blob", p("blob.json")},
			[]string{"tresor: error: File named '" + p("blob.json") + "' already exists.\n"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := []string{"security-domain", "restore-blob", "--sd-file", p("sdfile.json"), "--sd-exchange-key", p("exchange.cer"),
				"--sd-file-restore-blob", p("x.json")}
			res := tresor(t, env, append(args, tc.args...)...)
			if res.code != 1 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q lacks %q", res.stderr, w)
				}
			}
			if _, err := os.Stat(p("x.json")); err == nil {
				t.Error("x.json written")
			}
		})
	}
}

func TestSecurityDomainRestoreBlobBadFiles(t *testing.T) {
	dir := custodianDir(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	sd := string(mustRead(t, p("sdfile.json")))
	files := map[string]string{
		"notjson.json":  "nope",
		"nokeys.json":   `{"EncData": {}}`,
		"required.json": strings.Replace(sd, `"required":2`, `"required":11`, 1),
		"xor.json":      strings.Replace(sd, `"shamir_share"`, `"xor_split"`, 1),
		"blob.json":     string(mustRead(t, filepath.Join(azureSD, "restore-blob.sd1-sd2.json"))),
		"tampered.json": tamperShare(t, sd),
	}
	for n, s := range files {
		if err := os.WriteFile(p(n), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(files["required.json"], `"required":11`) || !strings.Contains(files["xor.json"], "xor_split") {
		t.Fatal("the Azure file changed shape: fix the test")
	}
	env := map[string]string{"TRESOR_CONFIG_DIR": t.TempDir()}
	tests := map[string]string{
		"notjson.json":  "Invalid SD file " + p("notjson.json") + ": not a JSON security-domain file",
		"nokeys.json":   "no EncData or SharedKeys",
		"required.json": `the value of "required" should be in range [2, 10]`,
		"xor.json":      "Unsupported SharedKeys algorithm: xor_split. Supported: shamir_share",
		"blob.json":     "it is a restore blob, not a security-domain file",
		"tampered.json": p("tampered.json") + " is damaged or was altered: SharedKeys.enc_shares[0] does not authenticate",
		"missing.json":  "File " + p("missing.json") + " does not exist.",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, env, "security-domain", "restore-blob", "--sd-file", p(name), "--sd-exchange-key", p("exchange.cer"),
				"--sd-wrapping-keys", p("sd1.pem"), p("sd2.pem"), "--sd-file-restore-blob", p("out.json"))
			if res.code != 1 || !strings.Contains(res.stderr, want) {
				t.Fatalf("exit %d, stderr %q; want %q", res.code, res.stderr, want)
			}
		})
	}
}

// tamperShare flips a character in the ciphertext of the first share.
func tamperShare(t *testing.T, sd string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(sd), &doc); err != nil {
		t.Fatal(err)
	}
	share := doc["SharedKeys"].(map[string]any)["enc_shares"].([]any)[0].(map[string]any)
	parts := strings.Split(share["enc_key"].(string), ".")
	ct := []byte(parts[3])
	if ct[3] == 'A' {
		ct[3] = 'B'
	} else {
		ct[3] = 'A'
	}
	parts[3] = string(ct)
	share["enc_key"] = strings.Join(parts, ".")
	out, _ := json.Marshal(doc)
	return string(out)
}

func TestSecurityDomainUpload(t *testing.T) {
	_, f, env := sdRegion(t)
	dir := custodianDir(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	blob := mustRead(t, filepath.Join(azureSD, "restore-blob.sd1-sd2.json"))
	copyFiles(t, dir, map[string]string{"blob.json": filepath.Join(azureSD, "restore-blob.sd1-sd2.json")})

	// --restore-blob sends the file as it is.
	stdout := ok(t, env, "security-domain", "upload", "--hsm-name", "hsm2", "--sd-file", p("blob.json"), "--restore-blob")
	if len(f.uploads) != 1 || f.uploads[0] != string(blob) {
		t.Fatal("the blob was not sent verbatim")
	}
	if stdout != "{\n  \"status\": \"Success\",\n  \"statusDetails\": \"done\"\n}\n" {
		t.Errorf("output %q", stdout)
	}
	// Without it the blob is built from the file and keys first.
	ok(t, env, "security-domain", "upload", "--hsm-name", "hsm2", "--sd-file", p("sdfile.json"),
		"--sd-exchange-key", p("exchange.cer"), "--sd-wrapping-keys", p("sd2.pem"), p("sd3.pem"))
	openBlob(t, []byte(f.uploads[1]))
	// --no-wait prints the first answer and does not poll.
	stdout = ok(t, env, "security-domain", "upload", "--hsm-name", "hsm2", "--sd-file", p("blob.json"), "--restore-blob", "--no-wait", "-o", "tsv")
	if stdout != "InProgress\tuploading\n" {
		t.Errorf("--no-wait output %q", stdout)
	}

	// A failed upload: exit 2 with the server's details, nothing on stdout.
	f.final, f.details = "Failed", "the upload blob was made for another exchange key"
	res := tresor(t, env, "security-domain", "upload", "--hsm-name", "hsm2", "--sd-file", p("blob.json"), "--restore-blob")
	if res.code != 2 || res.stdout != "" ||
		res.stderr != "tresor: error: SecurityDomainUploadFailed: the upload blob was made for another exchange key\n" {
		t.Errorf("failed upload: %+v", res)
	}
	// With --no-wait too, when the first answer says Failed.
	f.first = "Failed"
	res = tresor(t, env, "security-domain", "upload", "--hsm-name", "hsm2", "--sd-file", p("blob.json"), "--restore-blob", "--no-wait")
	if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, "SecurityDomainUploadFailed: the upload blob was made for another exchange key") {
		t.Errorf("failed upload with --no-wait: %+v", res)
	}
	// wait reports the same.
	res = tresor(t, env, "security-domain", "wait", "--hsm-name", "hsm2")
	if res.code != 2 || !strings.Contains(res.stderr, "SecurityDomainUploadFailed") {
		t.Errorf("wait: %+v", res)
	}

	// Local mistakes: exit 1 and nothing sent.
	n := len(f.uploads)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"SD file as blob":    {[]string{"--sd-file", p("sdfile.json"), "--restore-blob"}, "is a security-domain file, not a restore blob"},
		"no keys":            {[]string{"--sd-file", p("sdfile.json")}, "Please specify --sd-exchange-key"},
		"no file":            {[]string{"--restore-blob"}, "--sd-file is required"},
		"missing blob":       {[]string{"--sd-file", p("nope.json"), "--restore-blob"}, "File " + p("nope.json") + " does not exist."},
		"too few keys":       {[]string{"--sd-file", p("sdfile.json"), "--sd-exchange-key", p("exchange.cer"), "--sd-wrapping-keys", p("sd1.pem")}, "Insufficient shares available"},
		"blob as SD file":    {[]string{"--sd-file", p("blob.json"), "--sd-exchange-key", p("exchange.cer"), "--sd-wrapping-keys", p("sd1.pem"), p("sd2.pem")}, "upload it with --restore-blob"},
		"empty restore blob": {[]string{"--sd-file", p("empty.json"), "--restore-blob"}, "is empty"},
	} {
		_ = os.WriteFile(p("empty.json"), nil, 0o600)
		t.Run(name, func(t *testing.T) {
			res := tresor(t, env, append([]string{"security-domain", "upload", "--hsm-name", "hsm2"}, tc.args...)...)
			if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %q", res.code, res.stderr, tc.want)
			}
		})
	}
	if len(f.uploads) != n {
		t.Error("a refused upload reached the server")
	}
}

func TestSecurityDomainWait(t *testing.T) {
	_, f, env := sdRegion(t)
	stdout := ok(t, env, "security-domain", "wait", "--hsm-name", "hsm1", "--target-operation", "download", "-o", "table")
	if stdout != "Status   StatusDetails\n-------  -------------\nSuccess  done\n" {
		t.Errorf("table %q", stdout)
	}
	f.details = ""
	stdout = ok(t, env, "security-domain", "wait", "--hsm-name", "hsm1")
	if stdout != "{\n  \"status\": \"Success\",\n  \"statusDetails\": null\n}\n" {
		t.Errorf("output %q", stdout)
	}
	res := tresor(t, env, "security-domain", "wait", "--hsm-name", "hsm1", "--target-operation", "restore")
	if res.code != 1 || !strings.Contains(res.stderr, `--target-operation "restore": choose upload or download`) {
		t.Errorf("bad target: %+v", res)
	}
}
