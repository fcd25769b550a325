package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/client/clienttest"
	"tresor/internal/wire"
)

func newClient(t *testing.T, r *clienttest.Region, edit ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := r.Config()
	for _, e := range edit {
		e(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hsmBody(admin string) wire.ManagedHSM {
	days := 7
	return wire.ManagedHSM{
		Location: "local",
		SKU:      &wire.SKU{Family: "B", Name: "Standard_B1"},
		Tags:     map[string]string{"env": "test"},
		Properties: wire.ManagedHSMProps{
			InitialAdminObjectIDs:     []string{admin},
			SoftDeleteRetentionInDays: &days,
		},
	}
}

func TestNewValidates(t *testing.T) {
	tests := map[string]client.Config{
		"empty server":      {},
		"http":              {Server: "http://127.0.0.1:8443"},
		"path":              {Server: "https://127.0.0.1:8443/x"},
		"secret without id": {Server: "https://127.0.0.1:8443", ClientSecret: "s"},
		"bad CA":            {Server: "https://127.0.0.1:8443", CAPEM: []byte("not pem")},
		"missing CA file":   {Server: "https://127.0.0.1:8443", CAFile: "/nonexistent/ca.pem"},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := client.New(cfg); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestRegionTokensAndAPIVersion(t *testing.T) {
	r := clienttest.New(t)
	c := newClient(t, r)
	ctx := context.Background()
	info, err := c.Region(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *info != r.Info {
		t.Errorf("Region = %+v, want %+v", *info, r.Info)
	}
	for range 3 {
		if _, err := c.ListHSMs(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Subscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	tokenCalls := 0
	for _, req := range r.Requests() {
		switch {
		case strings.HasSuffix(req.Path, "/oauth2/v2.0/token"):
			tokenCalls++
			if !strings.HasPrefix(req.Path, "/"+r.Info.TenantID+"/") {
				t.Errorf("token endpoint path %s, want the region's tenant", req.Path)
			}
			form, _ := url.ParseQuery(string(req.Body))
			if got, want := form.Get("scope"), r.Info.ManagementResource+"/.default"; got != want {
				t.Errorf("scope = %q, want %q", got, want)
			}
		case strings.HasPrefix(req.Path, "/subscriptions"):
			if req.Query.Get("api-version") == "" {
				t.Errorf("%s %s without api-version", req.Method, req.Path)
			}
			if req.Audience != r.Info.ManagementResource {
				t.Errorf("%s %s: token audience %q, want %q", req.Method, req.Path, req.Audience, r.Info.ManagementResource)
			}
		}
	}
	if tokenCalls != 1 {
		t.Errorf("token endpoint called %d times, want 1 (cached)", tokenCalls)
	}
}

func TestHSMLifecycle(t *testing.T) {
	r := clienttest.New(t)
	r.PageSize = 1
	r.AsyncPolls = 2
	c := newClient(t, r)
	ctx := context.Background()

	h, err := c.CreateHSM(ctx, "rg1", "hsm1", hsmBody(r.ObjectID))
	if err != nil {
		t.Fatal(err)
	}
	if h.Properties.ProvisioningState != "Succeeded" {
		t.Errorf("after CreateHSM provisioningState = %q, want Succeeded (the operation was polled)", h.Properties.ProvisioningState)
	}
	if h.Properties.TenantID != r.Info.TenantID {
		t.Errorf("tenantId = %q, want the region's", h.Properties.TenantID)
	}
	if _, err := c.CreateHSM(ctx, "rg2", "hsm2", hsmBody(r.ObjectID)); err != nil {
		t.Fatal(err)
	}

	all, err := c.ListHSMs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("ListHSMs over pages of 1 = %d items, want 2", len(all))
	}
	inRG, err := c.ListHSMs(ctx, "rg2")
	if err != nil || len(inRG) != 1 || inRG[0].Name != "hsm2" {
		t.Fatalf("ListHSMs(rg2) = %v, %v", inRG, err)
	}
	found, err := c.FindHSM(ctx, "HSM2")
	if err != nil || client.ResourceGroup(found.ID) != "rg2" {
		t.Fatalf("FindHSM = %v, %v", found, err)
	}

	up, err := c.UpdateHSM(ctx, "rg1", "hsm1", wire.ManagedHSMPatch{Tags: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Tags) != 0 {
		t.Errorf("tags after clearing = %v", up.Tags)
	}

	if err := c.DeleteHSM(ctx, "rg1", "hsm1"); err != nil {
		t.Fatal(err)
	}
	del, err := c.ListDeletedHSMs(ctx)
	if err != nil || len(del) != 1 {
		t.Fatalf("ListDeletedHSMs = %v, %v", del, err)
	}
	if _, err := c.GetDeletedHSM(ctx, "local", "hsm1"); err != nil {
		t.Fatal(err)
	}
	rec, err := c.RecoverHSM(ctx, "", "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	if client.ResourceGroup(rec.ID) != "rg1" || rec.Properties.ProvisioningState != "Succeeded" {
		t.Errorf("recovered %s in state %s", rec.ID, rec.Properties.ProvisioningState)
	}

	if err := c.DeleteHSM(ctx, "rg1", "hsm1"); err != nil {
		t.Fatal(err)
	}
	if err := c.PurgeHSM(ctx, "", "hsm1"); err != nil {
		t.Fatal(err)
	}
	if del, _ := c.ListDeletedHSMs(ctx); len(del) != 0 {
		t.Errorf("after purge: %d deleted HSMs remain", len(del))
	}
	var patch map[string]any
	for _, req := range r.Requests() {
		if req.Method == http.MethodPatch {
			_ = json.Unmarshal(req.Body, &patch)
		}
	}
	if tags, ok := patch["tags"].(map[string]any); !ok || len(tags) != 0 {
		t.Errorf("PATCH body %v, want \"tags\":{}", patch)
	}
}

func TestErrors(t *testing.T) {
	r := clienttest.New(t)
	ctx := context.Background()
	good := newClient(t, r)
	if _, err := good.CreateHSM(ctx, "rg", "taken", hsmBody(r.ObjectID)); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		edit      func(*client.Config)
		intercept func(http.ResponseWriter, *http.Request) bool
		call      func(*client.Client) error
		status    int
		code      string
	}{
		"conflict": {
			call: func(c *client.Client) error {
				_, err := c.CreateHSM(ctx, "rg", "taken", hsmBody(r.ObjectID))
				return err
			},
			status: 409, code: "Conflict",
		},
		"not found": {
			call:   func(c *client.Client) error { _, err := c.GetHSM(ctx, "rg", "nope"); return err },
			status: 404, code: "ResourceNotFound",
		},
		"find not found": {
			call:   func(c *client.Client) error { _, err := c.FindHSM(ctx, "nope"); return err },
			status: 404, code: "ResourceNotFound",
		},
		"bad secret": {
			edit:   func(cfg *client.Config) { cfg.ClientSecret = "wrong" },
			call:   func(c *client.Client) error { _, err := c.Account(ctx); return err },
			status: 401, code: "invalid_client",
		},
		"plain text error": {
			intercept: func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != "/tresor/account" {
					return false
				}
				http.Error(w, "upstream exploded", http.StatusBadGateway)
				return true
			},
			call:   func(c *client.Client) error { _, err := c.Account(ctx); return err },
			status: 502, code: "BadGateway",
		},
		"failed operation": {
			intercept: func(w http.ResponseWriter, req *http.Request) bool {
				if !strings.HasPrefix(req.URL.Path, "/tresor/operations/") {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(wire.OperationStatus{Status: "Failed", Error: &wire.ErrorDetail{Code: "ProvisioningFailed", Message: "no room"}})
				return true
			},
			call: func(c *client.Client) error {
				_, err := c.CreateHSM(ctx, "rg", "fails", hsmBody(r.ObjectID))
				return err
			},
			status: 200, code: "ProvisioningFailed",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r.Intercept = tc.intercept
			defer func() { r.Intercept = nil }()
			c := good
			if tc.edit != nil {
				c = newClient(t, r, tc.edit)
			}
			err := tc.call(c)
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want *client.Error", err, err)
			}
			if ce.Status != tc.status || ce.Code != tc.code || ce.Message == "" {
				t.Errorf("got %+v, want status %d code %s with a message", *ce, tc.status, tc.code)
			}
		})
	}
}

func TestDataPlaneDialsRegionWithHSMHostAndSNI(t *testing.T) {
	r := clienttest.New(t)
	c := newClient(t, r)
	ctx := context.Background()
	var gotHost, gotSNI string
	r.HSM = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		gotHost, gotSNI = req.Host, req.TLS.ServerName
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":[1,2,3]}`))
	})
	base, err := c.HSMURL(ctx, "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	port := strings.TrimPrefix(r.Info.HSMResource, "https://"+clienttest.DNSSuffix+":")
	if want := "https://hsm1." + clienttest.DNSSuffix + ":" + port; base != want {
		t.Fatalf("HSMURL = %q, want %q", base, want)
	}
	var out struct{ Value []int }
	if _, err := c.DoJSON(ctx, http.MethodPost, base+"/rng?api-version=7.5", map[string]int{"count": 3}, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Value) != 3 {
		t.Errorf("decoded %v", out)
	}
	if want := "hsm1." + clienttest.DNSSuffix + ":" + port; gotHost != want {
		t.Errorf("Host = %q, want %q", gotHost, want)
	}
	if want := "hsm1." + clienttest.DNSSuffix; gotSNI != want {
		t.Errorf("SNI = %q, want %q", gotSNI, want)
	}
	reqs := r.Requests()
	if last := reqs[len(reqs)-1]; last.Audience != r.Info.HSMResource {
		t.Errorf("data-plane token audience %q, want %q", last.Audience, r.Info.HSMResource)
	}

	// Do leaves the status to the caller.
	req, _ := http.NewRequest(http.MethodGet, base+"/keys?api-version=7.5", nil)
	r.HSM = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":"Forbidden","message":"no","innererror":{"code":"ForbiddenByRbac"}}}`))
	})
	resp, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ce *client.Error
	if err := client.CheckResponse(resp); !errors.As(err, &ce) || ce.InnerCode != "ForbiddenByRbac" {
		t.Errorf("CheckResponse = %v", err)
	}
}

func TestRefusesForeignHosts(t *testing.T) {
	r := clienttest.New(t)
	c := newClient(t, r)
	for _, u := range []string{"https://example.com/x", "https://managedhsm.invalid.example.com/x", "http://hsm1." + clienttest.DNSSuffix + "/x"} {
		if _, err := c.DoJSON(context.Background(), http.MethodGet, u, nil, nil); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("DoJSON(%s) = %v, want refusal", u, err)
		}
	}
}

func TestTrustsOnlyGivenCA(t *testing.T) {
	r := clienttest.New(t)
	c := newClient(t, r, func(cfg *client.Config) { cfg.CAPEM = nil })
	if _, err := c.Region(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Region without the region's CA = %v, want a certificate error", err)
	}
	c = newClient(t, r, func(cfg *client.Config) { cfg.CAPEM, cfg.CAFile = nil, r.CAFile })
	if _, err := c.Region(context.Background()); err != nil {
		t.Errorf("Region with CAFile: %v", err)
	}
}

func TestGivenTokens(t *testing.T) {
	r := clienttest.New(t)
	ctx := context.Background()
	mgmt := r.Info.ManagementResource
	tests := map[string]struct {
		cfg     func(*client.Config)
		wantErr error
	}{
		"valid cached token": {cfg: func(cfg *client.Config) {
			cfg.ClientSecret = ""
			cfg.Tokens = []client.AccessToken{{Resource: mgmt, Token: r.IssueToken(mgmt, time.Hour), ExpiresOn: time.Now().Add(time.Hour)}}
		}},
		"expired cached token": {cfg: func(cfg *client.Config) {
			cfg.ClientSecret = ""
			cfg.Tokens = []client.AccessToken{{Resource: mgmt, Token: r.IssueToken(mgmt, -time.Minute), ExpiresOn: time.Now().Add(-time.Minute)}}
		}, wantErr: client.ErrNoCredentials},
		"expired cached token renewed by secret": {cfg: func(cfg *client.Config) {
			cfg.Tokens = []client.AccessToken{{Resource: mgmt, Token: "stale", ExpiresOn: time.Now().Add(time.Minute)}}
		}},
		"static JWT": {cfg: func(cfg *client.Config) {
			cfg.ClientSecret = ""
			cfg.Token = r.IssueToken(mgmt, time.Hour)
		}},
		"expired static JWT": {cfg: func(cfg *client.Config) {
			cfg.ClientSecret = ""
			cfg.Token = r.IssueToken(mgmt, -time.Hour)
		}, wantErr: client.ErrNoCredentials},
		"nothing": {cfg: func(cfg *client.Config) { cfg.ClientSecret = "" }, wantErr: client.ErrNoCredentials},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, r, tc.cfg)
			_, err := c.Account(ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Account: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestPrincipalsAndAccount(t *testing.T) {
	r := clienttest.New(t)
	c := newClient(t, r)
	ctx := context.Background()
	p, err := c.CreatePrincipal(ctx, wire.PrincipalCreate{DisplayName: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientSecret == "" || p.ObjectID == "" {
		t.Fatalf("created %+v", p)
	}
	list, err := c.ListPrincipals(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListPrincipals = %v, %v", list, err)
	}
	// The new principal can sign in.
	pc := newClient(t, r, func(cfg *client.Config) { cfg.ClientID, cfg.ClientSecret = p.ClientID, p.ClientSecret })
	acct, err := pc.Account(ctx)
	if err != nil || acct.ObjectID != p.ObjectID {
		t.Fatalf("Account = %+v, %v", acct, err)
	}
	if _, err := c.DeletePrincipal(ctx, p.ObjectID); err != nil {
		t.Fatal(err)
	}
	locs, err := c.Locations(ctx)
	if err != nil || len(locs) != 1 || locs[0].Name != "local" {
		t.Fatalf("Locations = %v, %v", locs, err)
	}
}

func TestRegionEndpointAlias(t *testing.T) {
	r := clienttest.New(t)
	// The region calls itself localhost; the client was given 127.0.0.1.
	// Status URLs and nextLinks on localhost still get the token.
	r.Info.Endpoint = strings.Replace(r.URL, "127.0.0.1", "localhost", 1)
	r.PageSize = 1
	c := newClient(t, r)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := c.CreateHSM(ctx, "rg", n, hsmBody(r.ObjectID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DoJSON(ctx, http.MethodGet, r.Info.Endpoint+"/tresor/account", nil, nil); err != nil {
		t.Fatalf("GET on the region's own name: %v", err)
	}
}
