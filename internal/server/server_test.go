package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

const armVersion = "?api-version=2023-07-01"

type call struct {
	t      testing.TB
	s      *servertest.Server
	client *http.Client
}

func newCall(t testing.TB, s *servertest.Server) *call {
	return &call{t: t, s: s, client: s.HTTPClient(t)}
}

// do sends a request and returns status, headers and body.
func (c *call) do(method, url, token string, body any) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

func (c *call) hsmPath(name string) string {
	return c.s.Endpoint + "/subscriptions/" + c.sub() + "/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/" + name + armVersion
}

func (c *call) sub() string {
	c.t.Helper()
	code, _, body := c.do("GET", c.s.Endpoint+"/tresor/region", "", nil)
	if code != 200 {
		c.t.Fatalf("region: %d %s", code, body)
	}
	var ri wire.RegionInfo
	_ = json.Unmarshal(body, &ri)
	return ri.SubscriptionID
}

func createBody(admins ...string) map[string]any {
	return map[string]any{
		"location": "local",
		"sku":      map[string]string{"family": "B", "name": "Standard_B1"},
		"properties": map[string]any{
			"initialAdminObjectIds": admins, "enableSoftDelete": true, "softDeleteRetentionInDays": 7,
			"networkAcls": map[string]string{"bypass": "AzureServices", "defaultAction": "Allow"},
		},
	}
}

func wantError(t *testing.T, code int, body []byte, wantCode int, wantErr string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d: %s", code, wantCode, body)
	}
	var e wire.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an Azure error body: %s", body)
	}
	if wantErr != "" && e.Error.Code != wantErr {
		t.Fatalf("error code %q, want %q (%s)", e.Error.Code, wantErr, e.Error.Message)
	}
}

func TestInstanceLifecycle(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	tok := s.AdminToken(t)

	code, hdr, body := c.do("PUT", c.hsmPath("contoso"), tok, createBody(s.ObjectID))
	if code != http.StatusAccepted || hdr.Get("Azure-AsyncOperation") == "" {
		t.Fatalf("create: %d %v %s", code, hdr, body)
	}
	var hsm wire.ManagedHSM
	_ = json.Unmarshal(body, &hsm)
	if hsm.Properties.SecurityDomainProperties.ActivationStatus != "NotActivated" ||
		hsm.Properties.HsmURI != s.HSMURL("contoso")+"/" || hsm.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("created: %s", body)
	}
	// The async operation reports success.
	code, _, body = c.do("GET", hdr.Get("Azure-AsyncOperation"), tok, nil)
	if code != 200 || !strings.Contains(string(body), `"Succeeded"`) {
		t.Fatalf("operation: %d %s", code, body)
	}
	// A second PUT in the same resource group updates (see TestAzureCLI);
	// in another resource group the name is taken.
	code, _, body = c.do("PUT", c.hsmPath("contoso"), tok, createBody(s.ObjectID))
	if code != http.StatusOK {
		t.Fatalf("second PUT: %d %s", code, body)
	}
	code, _, body = c.do("PUT", strings.Replace(c.hsmPath("CONTOSO"), "/rg/", "/other/", 1), tok, createBody(s.ObjectID))
	wantError(t, code, body, http.StatusConflict, "ConflictError")

	code, _, body = c.do("GET", c.hsmPath("contoso"), tok, nil)
	if code != 200 || !strings.Contains(string(body), `"activationStatus":"NotActivated"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	// Tags and purge protection can be updated; purge protection cannot be undone.
	code, _, body = c.do("PATCH", c.hsmPath("contoso"), tok, map[string]any{"tags": map[string]string{"env": "test"}})
	if code != 200 || !strings.Contains(string(body), `"env":"test"`) {
		t.Fatalf("patch: %d %s", code, body)
	}
	// Delete → listed as deleted → purge frees the name.
	code, _, body = c.do("DELETE", c.hsmPath("contoso"), tok, nil)
	if code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	code, _, body = c.do("GET", c.hsmPath("contoso"), tok, nil)
	wantError(t, code, body, http.StatusNotFound, "ResourceNotFound")
	code, _, body = c.do("GET", s.Endpoint+"/subscriptions/"+c.sub()+"/providers/Microsoft.KeyVault/deletedManagedHSMs"+armVersion, tok, nil)
	var del wire.DeletedManagedHSMList
	_ = json.Unmarshal(body, &del)
	if code != 200 || len(del.Value) != 1 || del.Value[0].Name != "contoso" ||
		!del.Value[0].Properties.ScheduledPurgeDate.Equal(del.Value[0].Properties.DeletionDate.Add(7*24*time.Hour)) {
		t.Fatalf("list deleted: %d %s", code, body)
	}
	// The name stays taken while soft-deleted.
	code, _, body = c.do("PUT", c.hsmPath("contoso"), tok, createBody(s.ObjectID))
	wantError(t, code, body, http.StatusConflict, "ConflictError")
	// Recover, delete again, purge.
	rec := createBody(s.ObjectID)
	rec["properties"].(map[string]any)["createMode"] = "recover"
	code, _, body = c.do("PUT", c.hsmPath("contoso"), tok, rec)
	if code != 200 || !strings.Contains(string(body), `"env":"test"`) {
		t.Fatalf("recover: %d %s", code, body)
	}
	c.do("DELETE", c.hsmPath("contoso"), tok, nil)
	purge := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/contoso/purge" + armVersion
	code, _, body = c.do("POST", purge, tok, nil)
	if code != http.StatusAccepted {
		t.Fatalf("purge: %d %s", code, body)
	}
	code, _, body = c.do("PUT", c.hsmPath("contoso"), tok, createBody(s.ObjectID))
	if code != http.StatusAccepted {
		t.Fatalf("create after purge: %d %s", code, body)
	}
}

// TestARMDiscovery: what ARM clients ask at login: the subscriptions and the
// locations of one (spec §9.12).
func TestARMDiscovery(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	tok := s.AdminToken(t)
	code, _, body := c.do("GET", s.Endpoint+"/subscriptions?api-version=2019-11-01", tok, nil)
	var subs wire.SubscriptionList
	mustJSON(t, body, &subs)
	if code != 200 || len(subs.Value) != 1 || subs.Value[0].SubscriptionID != c.sub() || subs.Value[0].State != "Enabled" ||
		subs.Value[0].TenantID != s.TenantID || subs.Value[0].ID != "/subscriptions/"+c.sub() {
		t.Fatalf("subscriptions: %d %s", code, body)
	}
	code, _, body = c.do("GET", s.Endpoint+"/subscriptions/"+c.sub()+"/locations?api-version=2019-11-01", tok, nil)
	var locs wire.LocationList
	mustJSON(t, body, &locs)
	if code != 200 || len(locs.Value) != 1 || locs.Value[0].Name != "local" {
		t.Fatalf("locations: %d %s", code, body)
	}
	code, _, body = c.do("GET", s.Endpoint+"/subscriptions", tok, nil)
	wantError(t, code, body, http.StatusBadRequest, "MissingApiVersionParameter")
	code, _, body = c.do("GET", s.Endpoint+"/subscriptions?api-version=2019-11-01", "", nil)
	wantError(t, code, body, http.StatusUnauthorized, "")
}

func TestPurgeProtection(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	tok := s.AdminToken(t)
	b := createBody(s.ObjectID)
	b["properties"].(map[string]any)["enablePurgeProtection"] = true
	if code, _, body := c.do("PUT", c.hsmPath("guarded"), tok, b); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, _, body := c.do("PATCH", c.hsmPath("guarded"), tok, map[string]any{"properties": map[string]any{"enablePurgeProtection": false}})
	wantError(t, code, body, http.StatusBadRequest, "")
	c.do("DELETE", c.hsmPath("guarded"), tok, nil)
	purge := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/guarded/purge" + armVersion
	code, _, body = c.do("POST", purge, tok, nil)
	wantError(t, code, body, http.StatusConflict, "PurgeProtectionEnabled")
	// Still listed as deleted.
	code, _, body = c.do("GET", s.Endpoint+"/subscriptions/"+c.sub()+"/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/guarded"+armVersion, tok, nil)
	if code != 200 || !strings.Contains(string(body), `"purgeProtectionEnabled":true`) {
		t.Fatalf("get deleted: %d %s", code, body)
	}
}

func TestCreateValidation(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	tok := s.AdminToken(t)
	tests := map[string]struct {
		name string
		mod  func(map[string]any)
	}{
		"short name":        {name: "ab"},
		"long name":         {name: strings.Repeat("a", 25)},
		"starts with digit": {name: "1abc"},
		"underscore":        {name: "ab_c"},
		"double hyphen":     {name: "ab--c"},
		"ends with hyphen":  {name: "abc-"},
		"no admins":         {name: "okname", mod: func(b map[string]any) { b["properties"].(map[string]any)["initialAdminObjectIds"] = []string{} }},
		"bad admin":         {name: "okname", mod: func(b map[string]any) { b["properties"].(map[string]any)["initialAdminObjectIds"] = []string{"bob"} }},
		"unknown admin": {name: "okname", mod: func(b map[string]any) {
			b["properties"].(map[string]any)["initialAdminObjectIds"] = []string{"0f0f0f0f-1111-4222-8333-444444444444"}
		}},
		"retention 6":     {name: "okname", mod: func(b map[string]any) { b["properties"].(map[string]any)["softDeleteRetentionInDays"] = 6 }},
		"retention 91":    {name: "okname", mod: func(b map[string]any) { b["properties"].(map[string]any)["softDeleteRetentionInDays"] = 91 }},
		"other location":  {name: "okname", mod: func(b map[string]any) { b["location"] = "eastus" }},
		"soft delete off": {name: "okname", mod: func(b map[string]any) { b["properties"].(map[string]any)["enableSoftDelete"] = false }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := createBody(s.ObjectID)
			if tc.mod != nil {
				tc.mod(b)
			}
			code, _, body := c.do("PUT", c.hsmPath(tc.name), tok, b)
			wantError(t, code, body, http.StatusBadRequest, "")
		})
	}
	code, _, body := c.do("PUT", c.hsmPath("okname"), tok, "{not json")
	wantError(t, code, body, http.StatusBadRequest, "BadParameter")
	code, _, body = c.do("PUT", strings.TrimSuffix(c.hsmPath("okname"), armVersion), tok, createBody(s.ObjectID))
	wantError(t, code, body, http.StatusBadRequest, "MissingApiVersionParameter")
	// Nothing was stored.
	code, _, body = c.do("GET", s.Endpoint+"/subscriptions/"+c.sub()+"/providers/Microsoft.KeyVault/managedHSMs"+armVersion, tok, nil)
	if code != 200 || strings.Contains(string(body), "okname") {
		t.Fatalf("list: %d %s", code, body)
	}
}

// forge signs claims with a key the server does not know.
func forge(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAuthentication(t *testing.T) {
	// An external issuer whose JWKS is a local file: the test holds its key.
	extKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	pub := jose.JSONWebKey{Key: &extKey.PublicKey, KeyID: "ext1", Algorithm: "ES256", Use: "sig"}
	j, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err := os.WriteFile(jwksFile, j, 0o600); err != nil {
		t.Fatal(err)
	}
	const extIssuer = "https://idp.example.test/realms/ops"
	extAdmin := "11111111-2222-4333-8444-555555555555"
	s := servertest.Start(t, func(c *server.Config) {
		c.Identity.TrustedIssuers = []server.TrustedIssuerConfig{{Issuer: extIssuer, JWKSFile: jwksFile, ARMAudiences: []string{"tresor"}, PrincipalClaim: "sub"}}
		c.Identity.RegionAdmins = []string{extAdmin}
	})
	c := newCall(t, s)
	admin := s.AdminToken(t)
	if code, _, body := c.do("PUT", c.hsmPath("authhsm"), admin, createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	signExt := func(claims map[string]any) string {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: extKey, KeyID: "ext1"}}, nil)
		tok, _ := jwt.Signed(sig).Claims(claims).Serialize()
		return tok
	}
	now := time.Now().Unix()
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	_, _, body := c.do("GET", s.Endpoint+"/"+s.TenantID+"/discovery/v2.0/keys", "", nil)
	_ = json.Unmarshal(body, &jwks)
	localIss := s.Endpoint + "/" + s.TenantID + "/v2.0"
	local := map[string]any{"iss": localIss, "aud": s.Endpoint, "oid": s.ObjectID, "tid": s.TenantID, "exp": now + 600, "nbf": now - 10, "iat": now - 10}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for a, b := range m {
			out[a] = b
		}
		out[k] = v
		return out
	}
	ext := map[string]any{"iss": extIssuer, "aud": "tresor", "sub": extAdmin, "exp": now + 600, "nbf": now - 10, "iat": now - 10}
	listURL := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/managedHSMs" + armVersion

	tests := map[string]struct {
		token string
		want  int
	}{
		"none":                             {"", 401},
		"garbage":                          {"not.a.token", 401},
		"forged":                           {forge(t, jwks.Keys[0].Kid, local), 401},
		"expired":                          {signExt(with(ext, "exp", now-3600)), 401},
		"not yet valid":                    {signExt(with(ext, "nbf", now+3600)), 401},
		"other audience":                   {signExt(with(ext, "aud", "someone-else")), 401},
		"hsm token on ARM":                 {s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource()), 401},
		"ARM audience":                     {s.Token(t, s.ClientID, s.ClientSecret, "https://management.core.windows.net/"), 200},
		"untrusted issuer":                 {signExt(with(ext, "iss", "https://evil.example.test")), 401},
		"external admin":                   {signExt(ext), 200},
		"local admin":                      {admin, 200},
		"external non-admin":               {signExt(with(ext, "sub", "99999999-2222-4333-8444-555555555555")), 200},
		"external id of a local principal": {signExt(with(ext, "sub", s.ObjectID)), 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, hdr, body := c.do("GET", listURL, tc.token, nil)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if code == 401 {
				wantError(t, code, body, 401, "")
				if hdr.Get("WWW-Authenticate") == "" {
					t.Fatal("no WWW-Authenticate")
				}
			}
		})
	}

	// External non-admin may not create; the external admin may.
	nonAdmin := signExt(with(ext, "sub", "99999999-2222-4333-8444-555555555555"))
	code, _, body := c.do("PUT", c.hsmPath("byext"), nonAdmin, createBody(extAdmin))
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	if code, _, body := c.do("PUT", c.hsmPath("byext"), signExt(ext), createBody(extAdmin)); code != 202 {
		t.Fatalf("external admin create: %d %s", code, body)
	}

	// HSM endpoint: the challenge, also for a body-less POST.
	code, hdr, body := c.do("POST", s.HSMURL("authhsm")+"/keys/k1/create?api-version=7.4", "", nil)
	wantChallenge := fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.Endpoint, s.TenantID, s.HSMResource())
	if code != 401 || hdr.Get("WWW-Authenticate") != wantChallenge {
		t.Fatalf("challenge: %d %q %s", code, hdr.Get("WWW-Authenticate"), body)
	}
	// Unknown instance → 404 with an Azure body; without a token, the
	// challenge, so that names cannot be probed.
	hsmTok := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	code, _, body = c.do("GET", s.HSMURL("nosuchhsm")+"/keys?api-version=7.4", hsmTok, nil)
	wantError(t, code, body, http.StatusNotFound, "ResourceNotFound")
	code, hdr, _ = c.do("GET", s.HSMURL("nosuchhsm")+"/keys?api-version=7.4", "", nil)
	if code != 401 || hdr.Get("WWW-Authenticate") != wantChallenge {
		t.Fatalf("unknown instance without a token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	// A management token is not an HSM token.
	for _, tok := range []string{admin, s.Token(t, s.ClientID, s.ClientSecret, "https://management.azure.com/")} {
		code, _, _ = c.do("POST", s.HSMURL("authhsm")+"/rng?api-version=7.4", tok, `{"count":8}`)
		if code != 401 {
			t.Fatalf("management token on HSM: %d", code)
		}
	}
}

func TestNonAdminPrincipal(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	admin := s.AdminToken(t)
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", admin, wire.PrincipalCreate{DisplayName: "app"})
	if code != 201 {
		t.Fatalf("create principal: %d %s", code, body)
	}
	var p wire.Principal
	_ = json.Unmarshal(body, &p)
	if p.ClientSecret == "" || p.ObjectID == "" {
		t.Fatalf("principal: %s", body)
	}
	user := s.Token(t, p.ClientID, p.ClientSecret, s.Endpoint)
	code, _, body = c.do("PUT", c.hsmPath("notmine"), user, createBody(p.ObjectID))
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	if code, _, body := c.do("PUT", c.hsmPath("adminhsm"), admin, createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, _, body = c.do("DELETE", c.hsmPath("adminhsm"), user, nil)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	code, _, body = c.do("GET", s.Endpoint+"/tresor/principals", user, nil)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")

	// An instance administrator (not a region admin) may delete its instance.
	code, _, body = c.do("PUT", c.hsmPath("userhsm"), admin, createBody(p.ObjectID))
	if code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, body := c.do("DELETE", c.hsmPath("userhsm"), user, nil); code != 200 {
		t.Fatalf("delete by instance admin: %d %s", code, body)
	}

	// Deleting the principal ends its tokens.
	if code, _, body := c.do("DELETE", s.Endpoint+"/tresor/principals/"+p.ObjectID, admin, nil); code != 200 {
		t.Fatalf("delete principal: %d %s", code, body)
	}
	code, _, _ = c.do("GET", s.Endpoint+"/tresor/account", user, nil)
	if code != 401 {
		t.Fatalf("deleted principal's token: %d", code)
	}
}

func TestNotActivated(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	if code, _, body := c.do("PUT", c.hsmPath("fresh"), s.AdminToken(t), createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	hsmTok := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	for _, path := range []string{"/keys/k1/create", "/keys/k1/sign", "/keys/k1/abc/encrypt"} {
		code, _, body := c.do("POST", s.HSMURL("fresh")+path+"?api-version=7.4", hsmTok, `{"kty":"RSA"}`)
		wantError(t, code, body, http.StatusConflict, "HSMNotActivated")
		if !strings.Contains(string(body), "download") || !strings.Contains(string(body), "security domain") {
			t.Fatalf("the error does not say how to activate: %s", body)
		}
	}
	// The administrator has no key or rng permissions (as in Managed HSM):
	// the denial names the data action.
	code, _, body := c.do("POST", s.HSMURL("fresh")+"/rng?api-version=7.4", hsmTok, `{"count":8}`)
	wantError(t, code, body, http.StatusForbidden, "Forbidden")
	if !strings.Contains(string(body), "rng/action") || !strings.Contains(string(body), "ForbiddenByRbac") {
		t.Fatalf("denial does not name the action: %s", body)
	}
	code, _, body = c.do("POST", s.HSMURL("fresh")+"/rng?api-version=9.9", hsmTok, `{"count":8}`)
	wantError(t, code, body, http.StatusBadRequest, "BadParameter")
}

func TestConcurrentCreates(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	tok := s.AdminToken(t)
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = c.do("PUT", c.hsmPath(fmt.Sprintf("conc%d", i%10)), tok, createBody(s.ObjectID))
		}()
	}
	wg.Wait()
	created := 0
	for _, code := range codes {
		switch code {
		case 202:
			created++
		case 200, 409: // an update of the created HSM, or a create that lost the race
		default:
			t.Fatalf("unexpected status %d", code)
		}
	}
	if created != 10 {
		t.Fatalf("%d creates succeeded, want 10", created)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, dir, "127.0.0.1:0"
	s1 := servertest.StartConfig(t, cfg)
	c := newCall(t, s1)
	if code, _, body := c.do("PUT", c.hsmPath("persist"), s1.AdminToken(t), createBody(s1.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	env1, err := os.ReadFile(filepath.Join(dir, server.DevEnvFile))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, server.DevEnvFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("dev.env mode %v", st.Mode().Perm())
	}
	s1.Stop()

	s2 := servertest.StartConfig(t, cfg)
	if s2.Bootstrap != nil || s2.TenantID != s1.TenantID {
		t.Fatal("restart created a new administrator or tenant")
	}
	env2, _ := os.ReadFile(filepath.Join(dir, server.DevEnvFile))
	if !bytes.Equal(env1, env2) {
		t.Fatal("dev.env changed on restart")
	}
	s2.ClientID, s2.ClientSecret, s2.ObjectID = s1.ClientID, s1.ClientSecret, s1.ObjectID
	c2 := newCall(t, s2)
	code, _, body := c2.do("GET", c2.hsmPath("persist"), s2.AdminToken(t), nil)
	if code != 200 {
		t.Fatalf("after restart: %d %s", code, body)
	}
}

func TestNoSecretsInDataDir(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	admin := s.AdminToken(t)
	_, _, body := c.do("POST", s.Endpoint+"/tresor/principals", admin, wire.PrincipalCreate{DisplayName: "app"})
	var p wire.Principal
	_ = json.Unmarshal(body, &p)
	if code, _, body := c.do("PUT", c.hsmPath("secrets"), admin, createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	in, err := s.Instances.Get(t.Context(), "secrets")
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Instances.Root(in)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	needles := map[string][]byte{
		"principal secret": []byte(p.ClientSecret),
		"bootstrap secret": []byte(s.ClientSecret),
		"root key":         root.InsecureBytes(),
		"root key (hex)":   []byte(fmt.Sprintf("%x", root.InsecureBytes())),
		"admin object id":  []byte(s.ObjectID + `","roleDefinitionId`), // role assignments are sealed
		"tags in clear":    []byte(`"skuName"`),
	}
	err = filepath.Walk(s.DataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() == server.DevEnvFile {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for what, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s found in clear in %s", what, filepath.Base(path))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
