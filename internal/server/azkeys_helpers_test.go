package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"tresor/internal/securitydomain"
	"tresor/internal/server/servertest"
	"tresor/internal/uuid"
)

// sdkClient returns the official azkeys client for an instance, with a
// ClientSecretCredential against the region's identity endpoint. The SDK's
// challenge-resource verification stays on.
func sdkClient(t *testing.T, s *servertest.Server, name, clientID, secret string) *azkeys.Client {
	t.Helper()
	hc := s.HTTPClient(t)
	opts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.Endpoint + "/"},
		Transport: hc,
	}
	cred, err := azidentity.NewClientSecretCredential(s.TenantID, clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := azkeys.NewClient(s.HSMURL(name), cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// activeHSM creates an activated instance whose bootstrap administrator
// also holds the Crypto User and Crypto Officer roles at "/".
func activeHSM(t testing.TB, s *servertest.Server, name string) {
	t.Helper()
	c := newCall(t, s)
	if code, _, body := c.do("PUT", c.hsmPath(name), s.AdminToken(t), createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create %s: %d %s", name, code, body)
	}
	hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	req := downloadBody(2, custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3"))
	if code, _, body := c.do("POST", s.HSMURL(name)+"/securitydomain/download?api-version=7.4", hsm, req); code != 202 {
		t.Fatalf("activate %s: %d %.300s", name, code, body)
	}
	for _, role := range []string{"21dbd100-6940-42c2-9190-5d6cb909625b", "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"} {
		assign(t, c, hsm, name, "/", role, s.ObjectID)
	}
}

// assign gives principal a role at scope on an instance.
func assign(t testing.TB, c *call, tok, name, scope, roleID, principal string) {
	t.Helper()
	prefix := strings.TrimSuffix(scope, "/")
	body := map[string]any{"properties": map[string]string{
		"roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/" + roleID,
		"principalId":      principal,
	}}
	u := c.s.HSMURL(name) + prefix + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.New() + "?api-version=7.4"
	if code, _, b := c.do("PUT", u, tok, body); code != 201 {
		t.Fatalf("assign %s at %s: %d %s", roleID, scope, code, b)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// readCustodianCert returns the DER of a custodian certificate in testdata.
func readCustodianCert(name string) ([]byte, error) {
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "custodians", name+".cer"))
	if err != nil {
		return nil, err
	}
	c, err := securitydomain.ParseCertificatePEM(pemBytes)
	if err != nil {
		return nil, err
	}
	return c.DER, nil
}
