package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// azTenant is the login tenant of the captured az requests
// (testdata/az), azUser the signed-in user's object id.
const (
	azTenant   = "11111111-2222-3333-4444-555555555555"
	azUser     = "edc8a6cb-bad8-5f4c-903c-9b94bc04787e"
	adfsIssuer = "https://adfs.contoso.test/adfs"
	oidcIssuer = "https://idp.contoso.test/realms/ops"
	azAudience = "https://management.hsm.local/"
)

// azRegion is a region named eastus2 whose control plane trusts two
// issuers: an ADFS-style one that declares its tenant (tenantIds) and
// whose tokens carry no tid, and one that declares none (its tokens' tid
// is its tenant).
type azRegion struct {
	s    *servertest.Server
	c    *call
	sign func(claims map[string]any) string
}

func startAzRegion(t *testing.T) *azRegion {
	t.Helper()
	// The ADFS-style issuer is served over HTTPS on a CA of its own
	// (discovery document and JWKS; the region trusts it through caFile);
	// the other one is a JWKS file, as for an air-gapped site.
	idp := newExtIdP(t, adfsIssuer)
	discovery, caFile := idp.serve(t)
	key := idp.key
	adfs := idp.iss
	s := servertest.Start(t, func(c *server.Config) {
		c.Region = "eastus2"
		c.Identity.TenantID = "99999999-8888-4777-8666-555555555555"
		c.Identity.TrustedIssuers = []server.TrustedIssuerConfig{
			{Issuer: adfs, DiscoveryURL: discovery, CAFile: caFile, ARMAudiences: []string{azAudience}, TenantIDs: []string{azTenant}},
			{Issuer: oidcIssuer, JWKSFile: idp.jwksFile, ARMAudiences: []string{azAudience}},
		}
		c.Identity.RegionAdmins = []string{azUser}
	})
	sign := func(claims map[string]any) string {
		now := time.Now().Unix()
		all := map[string]any{"iss": adfs, "aud": azAudience, "oid": azUser, "exp": now + 600, "nbf": now - 10, "iat": now - 10}
		for k, v := range claims {
			all[k] = v
		}
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "ext-1"}}, nil)
		tok, _ := jwt.Signed(sig).Claims(all).Serialize()
		return tok
	}
	return &azRegion{s: s, c: newCall(t, s), sign: sign}
}

// azBody reads a captured request body with {sub} filled in.
func azBody(t *testing.T, file, sub string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "az", file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), "{sub}", sub)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// with returns a deep copy of body with the value at the path of keys set
// (nil deletes it).
func with(body map[string]any, v any, keys ...string) map[string]any {
	j, _ := json.Marshal(body)
	var out map[string]any
	_ = json.Unmarshal(j, &out)
	m := out
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = v
	}
	return out
}

func decodeHSM(t *testing.T, body []byte) wire.ManagedHSM {
	t.Helper()
	var h wire.ManagedHSM
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return h
}

// TestAzureCLI drives the requests az sends for create (with its login
// tenant and a display name as location), update-hsm (a PUT of the whole
// resource) and check-name against a region whose trusted issuer speaks for
// that tenant.
func TestAzureCLI(t *testing.T) {
	r := startAzRegion(t)
	c, sub, tok := r.c, r.c.sub(), r.sign(nil)
	hsmURL := r.s.Endpoint + "/subscriptions/" + sub + "/resourceGroups/ContosoResourceGroup/providers/Microsoft.KeyVault/managedHSMs/ContosoMHSM?api-version=2022-07-01"

	// 1. az maps "East US 2" to a name by displayName.
	line, _ := os.ReadFile(filepath.Join("testdata", "az", "locations.txt"))
	method, path, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(string(line), "{sub}", sub)), " ")
	code, _, body := c.do(method, r.s.Endpoint+path, tok, nil)
	var locs wire.LocationList
	_ = json.Unmarshal(body, &locs)
	if code != 200 || len(locs.Value) != 1 || locs.Value[0].Name != "eastus2" || locs.Value[0].DisplayName != "East US 2" {
		t.Fatalf("locations: %d %s", code, body)
	}

	// 2. Create, as az sends it: the tenant is the issuer's, the location
	// a display name.
	create := azBody(t, "create.json", sub)
	code, hdr, body := c.do("PUT", hsmURL, tok, create)
	if code != http.StatusAccepted {
		t.Fatalf("create: %d %s", code, body)
	}
	if h := decodeHSM(t, body); h.Properties.TenantID != azTenant || h.Location != "eastus2" {
		t.Fatalf("created: %s", body)
	}
	code, _, body = c.do("GET", hdr.Get("Azure-AsyncOperation"), tok, nil)
	if code != 200 || !strings.Contains(string(body), `"Succeeded"`) {
		t.Fatalf("operation: %d %s", code, body)
	}
	code, _, body = c.do("GET", hsmURL, tok, nil)
	got := decodeHSM(t, body)
	if code != 200 || got.Properties.TenantID != azTenant || got.Properties.NetworkACLs["defaultAction"] != "Allow" ||
		*got.Properties.SoftDeleteRetentionInDays != 90 || got.Identity != nil {
		t.Fatalf("get: %d %s", code, body)
	}

	// 3. update-hsm: the whole resource back by PUT.
	update := azBody(t, "update.json", sub)
	code, _, body = c.do("PUT", hsmURL, tok, update)
	if code != http.StatusOK {
		t.Fatalf("update: %d %s", code, body)
	}
	code, _, body = c.do("GET", hsmURL, tok, nil)
	got = decodeHSM(t, body)
	uai := "/subscriptions/" + sub + "/resourceGroups/ContosoResourceGroup/providers/Microsoft.ManagedIdentity/userAssignedIdentities/contoso-id"
	if code != 200 || got.Tags["env"] != "prod" || !*got.Properties.EnablePurgeProtection ||
		got.Properties.NetworkACLs["defaultAction"] != "Deny" || got.Properties.NetworkACLs["ipRules"] == nil ||
		got.Identity == nil || got.Identity.Type != "UserAssigned" || got.Identity.UserAssignedIdentities[uai] == nil ||
		got.Properties.TenantID != azTenant {
		t.Fatalf("after update: %d %s", code, body)
	}
	// The same PUT again changes nothing and answers 200 (re-apply).
	if code, _, body = c.do("PUT", hsmURL, tok, update); code != http.StatusOK {
		t.Fatalf("re-apply: %d %s", code, body)
	}

	// 4. What cannot change is a 400 naming the field; the HSM stays as it was.
	bad := map[string]struct {
		body  map[string]any
		field string
	}{
		"location":                  {with(update, "West Europe", "location"), "location"},
		"no location":               {with(update, nil, "location"), "location"},
		"tenant":                    {with(update, "22222222-2222-3333-4444-555555555555", "properties", "tenantId"), "properties.tenantId"},
		"initial administrators":    {with(update, []string{"0b6e6c4f-4c4e-4b61-8f7a-52ef4a4d1c3e"}, "properties", "initialAdminObjectIds"), "properties.initialAdminObjectIds"},
		"sku":                       {with(update, map[string]any{"family": "B", "name": "Custom_B32"}, "sku"), "sku.name"},
		"retention":                 {with(update, 7, "properties", "softDeleteRetentionInDays"), "properties.softDeleteRetentionInDays"},
		"purge protection off":      {with(update, false, "properties", "enablePurgeProtection"), "purge protection cannot be disabled"},
		"soft delete off":           {with(update, false, "properties", "enableSoftDelete"), "properties.enableSoftDelete"},
		"identity type":             {with(update, map[string]any{"type": "Everything"}, "identity"), "identity.type"},
		"user identity missing ids": {with(update, map[string]any{"type": "UserAssigned"}, "identity"), "identity.userAssignedIdentities"},
		"unknown property":          {with(update, true, "properties", "enableRbacAuthorization"), "enableRbacAuthorization"},
		"other region":              {with(update, []any{map[string]any{"name": "westeurope"}}, "properties", "regions"), "properties.regions[0]"},
		"public network access":     {with(update, "Sometimes", "properties", "publicNetworkAccess"), "properties.publicNetworkAccess"},
	}
	for name, tc := range bad {
		t.Run("update/"+name, func(t *testing.T) {
			code, _, body := c.do("PUT", hsmURL, tok, tc.body)
			wantError(t, code, body, http.StatusBadRequest, "")
			if !strings.Contains(string(body), tc.field) {
				t.Fatalf("error does not name %s: %s", tc.field, body)
			}
			code, _, body = c.do("GET", hsmURL, tok, nil)
			after := decodeHSM(t, body)
			if code != 200 || after.Tags["env"] != "prod" || !*after.Properties.EnablePurgeProtection ||
				after.Location != "eastus2" || after.Identity == nil || after.Properties.NetworkACLs["defaultAction"] != "Deny" ||
				after.Properties.TenantID != azTenant || after.SKU.Name != "Standard_B1" {
				t.Fatalf("changed by a refused update: %s", body)
			}
		})
	}
	// A PUT without identity removes it (PUT replaces the resource).
	code, _, body = c.do("PUT", hsmURL, tok, with(update, nil, "identity"))
	if code != 200 || decodeHSM(t, body).Identity != nil {
		t.Fatalf("update without identity: %d %s", code, body)
	}

	// 5. check-name: taken, available, invalid.
	checkURL := r.s.Endpoint + "/subscriptions/" + sub + "/providers/Microsoft.KeyVault/checkMhsmNameAvailability?api-version=2023-07-01"
	names := map[string]struct {
		body   any
		want   wire.NameAvailability
		inText string
	}{
		"taken":           {azBody(t, "check-name.json", sub), wire.NameAvailability{Reason: "AlreadyExists"}, "already in use"},
		"taken, any case": {map[string]string{"name": "contosomhsm"}, wire.NameAvailability{Reason: "AlreadyExists"}, "already in use"},
		"available":       {map[string]string{"name": "FabrikamMHSM"}, wire.NameAvailability{NameAvailable: true}, ""},
		"invalid":         {map[string]string{"name": "1-bad--name"}, wire.NameAvailability{Reason: "AccountNameInvalid"}, "invalid"},
		"empty":           {map[string]string{"name": ""}, wire.NameAvailability{Reason: "AccountNameInvalid"}, "invalid"},
	}
	for name, tc := range names {
		t.Run("check-name/"+name, func(t *testing.T) {
			code, _, body := c.do("POST", checkURL, tok, tc.body)
			var got wire.NameAvailability
			_ = json.Unmarshal(body, &got)
			if code != 200 || got.NameAvailable != tc.want.NameAvailable || got.Reason != tc.want.Reason ||
				!strings.Contains(got.Message, tc.inText) || (got.NameAvailable && strings.Contains(string(body), "reason")) {
				t.Fatalf("%d %s", code, body)
			}
		})
	}
	// A soft-deleted HSM keeps its name.
	if code, _, body = c.do("DELETE", hsmURL, tok, nil); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	code, _, body = c.do("POST", checkURL, tok, azBody(t, "check-name.json", sub))
	if code != 200 || !strings.Contains(string(body), `"reason":"AlreadyExists"`) || !strings.Contains(string(body), "deleted") {
		t.Fatalf("check-name of a deleted HSM: %d %s", code, body)
	}
	// Its location in the deleted HSM's path compares as ARM does.
	code, _, body = c.do("GET", r.s.Endpoint+"/subscriptions/"+sub+"/providers/Microsoft.KeyVault/locations/EastUS2/deletedManagedHSMs/ContosoMHSM?api-version=2023-07-01", tok, nil)
	if code != 200 {
		t.Fatalf("get deleted in EastUS2: %d %s", code, body)
	}
}

// TestAzureCLITenants checks which tenantId a create may name, and what a
// create that names none records.
func TestAzureCLITenants(t *testing.T) {
	r := startAzRegion(t)
	sub := r.c.sub()
	create := azBody(t, "create.json", sub)
	regionTenant := r.s.TenantID
	if regionTenant != "99999999-8888-4777-8666-555555555555" {
		t.Fatalf("region tenant %s, want the configured one", regionTenant)
	}
	tests := map[string]struct {
		token      string
		body       map[string]any
		wantTenant string // "" = refused with 400
		wantInErr  []string
	}{
		"issuer's tenantIds":           {r.sign(nil), create, azTenant, nil},
		"issuer's tenant, no tenantId": {r.sign(map[string]any{"tid": azTenant}), with(create, nil, "properties", "tenantId"), azTenant, nil},
		"region's tenant":              {r.sign(nil), with(create, regionTenant, "properties", "tenantId"), regionTenant, nil},
		"no tid, no tenantId":          {r.sign(nil), with(create, nil, "properties", "tenantId"), regionTenant, nil},
		"tid of an issuer without tenantIds": {r.sign(map[string]any{"iss": oidcIssuer, "tid": "33333333-2222-3333-4444-555555555555"}),
			with(create, "33333333-2222-3333-4444-555555555555", "properties", "tenantId"), "33333333-2222-3333-4444-555555555555", nil},
		"tid not in the issuer's tenantIds": {r.sign(map[string]any{"tid": "33333333-2222-3333-4444-555555555555"}),
			with(create, "33333333-2222-3333-4444-555555555555", "properties", "tenantId"), "", []string{"identity.tenantId", "tenantIds"}},
		"tenant nobody trusts": {r.sign(map[string]any{"iss": oidcIssuer, "tid": azTenant}),
			with(create, "44444444-2222-3333-4444-555555555555", "properties", "tenantId"), "", []string{"44444444-2222-3333-4444-555555555555", "identity.tenantId", regionTenant}},
		"local principal, issuer's tenant": {r.s.AdminToken(t), with(create, []string{r.s.ObjectID}, "properties", "initialAdminObjectIds"), "", []string{"identity.tenantId"}},
		"location of another region":       {r.sign(nil), with(create, "West Europe", "location"), "", []string{"West Europe", "eastus2"}},
		"location in other case":           {r.sign(nil), with(create, "EASTUS2", "location"), azTenant, nil},
	}
	i := 0
	for name, tc := range tests {
		i++
		hsm := "tenant" + string(rune('a'+i))
		url := r.s.Endpoint + "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/" + hsm + armVersion
		t.Run(name, func(t *testing.T) {
			code, _, body := r.c.do("PUT", url, tc.token, tc.body)
			if tc.wantTenant == "" {
				wantError(t, code, body, http.StatusBadRequest, "")
				for _, s := range tc.wantInErr {
					if !strings.Contains(string(body), s) {
						t.Fatalf("error does not say %q: %s", s, body)
					}
				}
				if code, _, body := r.c.do("GET", url, tc.token, nil); code != http.StatusNotFound {
					t.Fatalf("a refused create left an HSM: %d %s", code, body)
				}
				return
			}
			if code != http.StatusAccepted {
				t.Fatalf("create: %d %s", code, body)
			}
			code, _, body = r.c.do("GET", url, tc.token, nil)
			if got := decodeHSM(t, body).Properties.TenantID; code != 200 || got != tc.wantTenant {
				t.Fatalf("tenant %q, want %q: %s", got, tc.wantTenant, body)
			}
		})
	}
}

// TestRegionTenant checks identity.tenantId: without it a region keeps the
// tenant it generated; with it the region's tenant is the configured one,
// also for a region that already has one, and HSMs keep the tenant they
// were created with. Tokens are issued at {endpoint}/{tenant} only.
func TestRegionTenant(t *testing.T) {
	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, dir, "127.0.0.1:0"
	steps := []struct {
		name, configured string
		want             string // "" = the generated tenant
	}{
		{"generated", "", ""},
		{"kept on restart", "", ""},
		{"configured", "0c1b9c8e-5a4b-4c3d-9e2f-1a0b9c8d7e6f", "0c1b9c8e-5a4b-4c3d-9e2f-1a0b9c8d7e6f"},
		{"configured tenant kept without the config", "", "0c1b9c8e-5a4b-4c3d-9e2f-1a0b9c8d7e6f"},
		{"configured again", "contoso.example", "contoso.example"},
	}
	var generated, firstHSMTenant string
	var creds [3]string
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cfg.Identity.TenantID = st.configured
			s := servertest.StartConfig(t, cfg)
			defer s.Stop()
			if i == 0 {
				generated = s.TenantID
				creds = [3]string{s.ClientID, s.ClientSecret, s.ObjectID}
			}
			s.ClientID, s.ClientSecret, s.ObjectID = creds[0], creds[1], creds[2]
			want := st.want
			if want == "" {
				want = generated
			}
			if s.TenantID != want {
				t.Fatalf("tenant %q, want %q", s.TenantID, want)
			}
			c := newCall(t, s)
			tok := s.AdminToken(t) // from {endpoint}/{tenant}/oauth2/v2.0/token
			if i == 0 {
				if code, _, body := c.do("PUT", c.hsmPath("tenanthsm"), tok, createBody(s.ObjectID)); code != 202 {
					t.Fatalf("create: %d %s", code, body)
				}
			}
			code, _, body := c.do("GET", c.hsmPath("tenanthsm"), tok, nil)
			got := decodeHSM(t, body).Properties.TenantID
			if i == 0 {
				firstHSMTenant = got
			}
			if code != 200 || got != generated || firstHSMTenant != generated {
				t.Fatalf("the HSM's tenant is %q, want the one it was created with (%q): %d %s", got, generated, code, body)
			}
			if want != generated {
				code, _, _ := c.do("GET", s.Endpoint+"/"+generated+"/v2.0/.well-known/openid-configuration", "", nil)
				if code != http.StatusNotFound {
					t.Fatalf("the former tenant's discovery document: %d, want 404", code)
				}
			}
		})
	}
}
