package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"tresor/internal/securitydomain"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// TestKeyBackupAcrossSecurityDomains: a key backed up in one instance
// restores into a second instance that recovered the first's security
// domain, and not into an unrelated instance.
func TestKeyBackupAcrossSecurityDomains(t *testing.T) {
	s := servertest.Start(t)
	ctx := context.Background()
	activeHSM(t, s, "source")
	activeHSM(t, s, "unrelated")
	src := sdkClient(t, s, "source", s.ClientID, s.ClientSecret)
	if _, err := src.CreateKey(ctx, "payroll", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), Tags: map[string]*string{"team": to.Ptr("finance")}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateKey(ctx, "payroll", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil); err != nil {
		t.Fatal(err)
	}
	backup, err := src.BackupKey(ctx, "payroll", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Same instance: the name is taken; after delete and purge it restores.
	if _, err := src.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil); httpStatus(err) != http.StatusConflict {
		t.Fatalf("restore over an existing key: %v", err)
	}
	// An unrelated instance refuses it.
	other := sdkClient(t, s, "unrelated", s.ClientID, s.ClientSecret)
	if _, err := other.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil); httpStatus(err) != http.StatusBadRequest {
		t.Fatalf("restore into an unrelated HSM: %v", err)
	}
	// A tampered backup is refused.
	bad := append([]byte(nil), backup.Value...)
	bad[len(bad)/2] ^= 1
	if _, err := src.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bad}, nil); httpStatus(err) != http.StatusBadRequest {
		t.Fatalf("restore of a tampered backup: %v", err)
	}

	// A new instance recovers the source's security domain.
	c := newCall(t, s)
	if code, _, body := c.do("PUT", c.hsmPath("rebuilt"), s.AdminToken(t), createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	sdFile := downloadAgain(t, c, hsm, "source")
	code, _, body := c.do("GET", s.HSMURL("rebuilt")+"/securitydomain/upload?api-version=7.4", hsm, nil)
	if code != 200 {
		t.Fatalf("transfer key: %d %s", code, body)
	}
	var tk wire.TransferKey
	mustJSON(t, body, &tk)
	var jwk wire.SecurityDomainJWK
	mustJSON(t, []byte(tk.TransferKey), &jwk)
	der, _ := base64.StdEncoding.DecodeString(jwk.X5C[0])
	exCert, err := securitydomain.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := sdFile.Open([]securitydomain.Custodian{custodian(t, "sd2"), custodian(t, "sd3")})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := securitydomain.BuildUploadBlob(blobs, exCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body = c.do("POST", s.HSMURL("rebuilt")+"/securitydomain/upload?api-version=7.4", hsm, wire.SecurityDomainValue{Value: string(blob)})
	if code != 202 || !json.Valid(body) {
		t.Fatalf("upload: %d %s", code, body)
	}
	for _, role := range []string{"21dbd100-6940-42c2-9190-5d6cb909625b", "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"} {
		assign(t, c, hsm, "rebuilt", "/", role, s.ObjectID)
	}
	dst := sdkClient(t, s, "rebuilt", s.ClientID, s.ClientSecret)
	restored, err := dst.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil)
	if err != nil {
		t.Fatalf("restore into the recovered HSM: %v", err)
	}
	if restored.Tags["team"] != nil {
		// Tags belong to versions; the current version has none.
		t.Fatalf("restored current version tags: %v", restored.Tags)
	}
	n := 0
	pager := dst.NewListKeyPropertiesVersionsPager("payroll", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Value {
			n++
			if p.Tags["team"] != nil && *p.Tags["team"] != "finance" {
				t.Fatal("a version's tags changed")
			}
		}
	}
	if n != 2 {
		t.Fatalf("restored %d versions, want 2", n)
	}
	digest := make([]byte, 32)
	sig, err := dst.Sign(ctx, "payroll", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := src.Verify(ctx, "payroll", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Digest: digest, Signature: sig.Result}, nil)
	if err != nil || !*v.Value {
		t.Fatalf("the restored key is not the same key: %v", err)
	}
}

// downloadAgain re-downloads an active instance's security domain.
func downloadAgain(t *testing.T, c *call, tok, name string) *securitydomain.File {
	t.Helper()
	code, _, body := c.do("POST", c.s.HSMURL(name)+"/securitydomain/download?api-version=7.4", tok,
		downloadBody(2, custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3")))
	if code != 202 {
		t.Fatalf("download: %d %s", code, body)
	}
	var v wire.SecurityDomainValue
	mustJSON(t, body, &v)
	f, err := securitydomain.ParseFile([]byte(v.Value))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestScheduledKeyLifecycle: rotation policies are carried out on time, and
// deleted keys and instances are purged at their scheduled purge date.
func TestScheduledKeyLifecycle(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	s := servertest.Start(t, func(c *server.Config) { c.Clock = clock.Now })
	ctx := context.Background()
	activeHSM(t, s, "sched")
	kc := sdkClient(t, s, "sched", s.ClientID, s.ClientSecret)
	for _, n := range []string{"by-age", "by-expiry", "no-policy", "deleted"} {
		if _, err := kc.CreateKey(ctx, n, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rotate := &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)}
	if _, err := kc.UpdateKeyRotationPolicy(ctx, "by-age", azkeys.KeyRotationPolicy{
		Attributes:      &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P90D")},
		LifetimeActions: []*azkeys.LifetimeAction{{Action: rotate, Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P30D")}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	exp := clock.Now().Add(60 * 24 * time.Hour)
	if _, err := kc.UpdateKey(ctx, "by-expiry", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Expires: &exp}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.UpdateKeyRotationPolicy(ctx, "by-expiry", azkeys.KeyRotationPolicy{
		Attributes:      &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P60D")},
		LifetimeActions: []*azkeys.LifetimeAction{{Action: rotate, Trigger: &azkeys.LifetimeActionTrigger{TimeBeforeExpiry: to.Ptr("P10D")}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.DeleteKey(ctx, "deleted", nil); err != nil {
		t.Fatal(err)
	}
	versions := func(name string) int {
		t.Helper()
		n := 0
		pager := kc.NewListKeyPropertiesVersionsPager(name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		return n
	}
	step := func(d time.Duration, want map[string]int) {
		t.Helper()
		clock.Add(d)
		// Lifecycle runners racing each other rotate each due key once.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { s.RunDue(ctx) })
		}
		wg.Wait()
		for name, n := range want {
			if got := versions(name); got != n {
				t.Fatalf("after +%v: %s has %d versions, want %d", d, name, got, n)
			}
		}
	}
	// Keys live 7 days after deletion (the instance's retention).
	step(6*24*time.Hour, map[string]int{"by-age": 1, "by-expiry": 1, "no-policy": 1})
	if _, err := kc.GetDeletedKey(ctx, "deleted", nil); err != nil {
		t.Fatalf("the deleted key went before its purge date: %v", err)
	}
	step(2*24*time.Hour, map[string]int{"by-age": 1}) // day 8
	if _, err := kc.GetDeletedKey(ctx, "deleted", nil); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("the deleted key outlived its scheduled purge date: %v", err)
	}
	step(21*24*time.Hour, map[string]int{"by-age": 1, "by-expiry": 1})                 // day 29
	step(2*24*time.Hour, map[string]int{"by-age": 2, "by-expiry": 1})                  // day 31
	step(20*24*time.Hour, map[string]int{"by-age": 2, "by-expiry": 2, "no-policy": 1}) // day 51: 9 days before expiry
	step(time.Hour, map[string]int{"by-age": 2, "by-expiry": 2})                       // nothing more is due

	// Instances are purged at their scheduled purge date too.
	c := newCall(t, s)
	if code, _, body := c.do("DELETE", c.hsmPath("sched"), s.AdminToken(t), nil); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	clock.Add(6 * 24 * time.Hour)
	s.RunDue(ctx)
	deletedURL := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/sched" + armVersion
	if code, _, _ := c.do("GET", deletedURL, s.AdminToken(t), nil); code != 200 {
		t.Fatalf("purged too early: %d", code)
	}
	clock.Add(2 * 24 * time.Hour)
	s.RunDue(ctx)
	if code, _, _ := c.do("GET", deletedURL, s.AdminToken(t), nil); code != 404 {
		t.Fatalf("not purged at its scheduled date: %d", code)
	}
}

// TestKeyPurgeProtection: under the instance's purge protection a deleted
// key cannot be purged before its scheduled purge date, and is then purged
// by the lifecycle loop.
func TestKeyPurgeProtection(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	s := servertest.Start(t, func(c *server.Config) { c.Clock = clock.Now })
	ctx := context.Background()
	activeHSM(t, s, "guarded")
	c := newCall(t, s)
	code, _, body := c.do("PATCH", c.hsmPath("guarded"), s.AdminToken(t), map[string]any{"properties": map[string]any{"enablePurgeProtection": true}})
	if code != 200 {
		t.Fatalf("enable purge protection: %d %s", code, body)
	}
	kc := sdkClient(t, s, "guarded", s.ClientID, s.ClientSecret)
	if _, err := kc.CreateKey(ctx, "kept", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := kc.GetKey(ctx, "kept", "", nil)
	if err != nil || *got.Attributes.RecoveryLevel != "CustomizedRecoverable" {
		t.Fatalf("recovery level under purge protection: %v %v", err, got.Attributes.RecoveryLevel)
	}
	if _, err := kc.DeleteKey(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.PurgeDeletedKey(ctx, "kept", nil); httpStatus(err) != http.StatusForbidden || !strings.Contains(err.Error(), "purge protection") {
		t.Fatalf("purge under purge protection: %v", err)
	}
	if _, err := kc.GetDeletedKey(ctx, "kept", nil); err != nil {
		t.Fatalf("the refused purge removed the key: %v", err)
	}
	clock.Add(8 * 24 * time.Hour)
	s.RunDue(ctx)
	if _, err := kc.GetDeletedKey(ctx, "kept", nil); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("not purged at its scheduled date: %v", err)
	}
}

// TestConcurrentKeyVersions: concurrent creates of one key name each add a
// version; none is lost to another writer.
func TestConcurrentKeyVersions(t *testing.T) {
	s := servertest.Start(t)
	activeHSM(t, s, "busy")
	kc := sdkClient(t, s, "busy", s.ClientID, s.ClientSecret)
	ctx := context.Background()
	const n = 16
	made := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := kc.CreateKey(ctx, "shared", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM)}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			made <- k.Key.KID.Version()
		}()
	}
	wg.Wait()
	close(made)
	want := map[string]bool{}
	for v := range made {
		want[v] = true
	}
	pager := kc.NewListKeyPropertiesVersionsPager("shared", nil)
	got := map[string]bool{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Value {
			got[p.KID.Version()] = true
		}
	}
	if len(want) != n || len(got) != n {
		t.Fatalf("%d creates answered, %d versions listed, want %d", len(want), len(got), n)
	}
	for v := range want {
		if !got[v] {
			t.Fatalf("version %s was acknowledged but is lost", v)
		}
	}
}

// TestKeyNamesIgnoreCase: key names are case-insensitive, as in Key Vault:
// "Payroll" and "payroll" are one key, which keeps the name it was created
// with; a role scoped to one spelling covers the key, and no other.
func TestKeyNamesIgnoreCase(t *testing.T) {
	s := servertest.Start(t)
	ctx := context.Background()
	activeHSM(t, s, "cases")
	kc := sdkClient(t, s, "cases", s.ClientID, s.ClientSecret)
	first, err := kc.CreateKey(ctx, "Payroll", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := kc.CreateKey(ctx, "payroll", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Key.KID.Name() != "Payroll" || second.Key.KID.Name() != "Payroll" || first.Key.KID.Version() == second.Key.KID.Version() {
		t.Fatalf("kids %s and %s: want two versions of Payroll", *first.Key.KID, *second.Key.KID)
	}
	got, err := kc.GetKey(ctx, "PAYROLL", first.Key.KID.Version(), nil)
	if err != nil || got.Key.KID.Version() != first.Key.KID.Version() {
		t.Fatalf("get by another spelling: %v", err)
	}
	n := 0
	for pager := kc.NewListKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 1 {
		t.Fatalf("%d keys listed, want 1", n)
	}
	if _, err := kc.DeleteKey(ctx, "pAyRoLl", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CreateKey(ctx, "PAYROLL", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil); httpStatus(err) != http.StatusConflict {
		t.Fatalf("a deleted name under another spelling: %v", err)
	}
}
