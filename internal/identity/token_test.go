package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	const secret = "tsr~the-client-secret-0123456789abcdefghij"
	iss := newTestIssuer(t, fixedNow(t0))
	p := testPrincipal(secret)
	dir := memDirectory{principals: map[string]Principal{testClientID: p}}
	allowed := []string{testAudience, "https://managedhsm.local"}
	good := TokenRequest{
		TenantID:     testTenant,
		GrantType:    "client_credentials",
		ClientID:     testClientID,
		ClientSecret: secret,
		Scope:        testAudience + "/.default",
	}

	tests := map[string]struct {
		mutate   func(*TokenRequest)
		dir      PrincipalDirectory
		wantCode string // OAuth error code; empty means success
		wantAud  string // on success
		wantIn   string // substring of the error description
	}{
		"client credentials":   {mutate: func(*TokenRequest) {}, wantAud: testAudience},
		"tenant in other case": {mutate: func(r *TokenRequest) { r.TenantID = strings.ToUpper(testTenant) }, wantAud: testAudience},
		"scope with oidc scopes": {
			mutate:  func(r *TokenRequest) { r.Scope = testAudience + "/.default openid offline_access profile" },
			wantAud: testAudience,
		},
		"oidc scopes first": {
			mutate:  func(r *TokenRequest) { r.Scope = "openid  " + testAudience + "/.default" },
			wantAud: testAudience,
		},
		"scope with trailing slash resource": {
			mutate:  func(r *TokenRequest) { r.Scope = testAudience + "//.default" },
			wantAud: testAudience,
		},
		"second allowed audience": {
			mutate:  func(r *TokenRequest) { r.Scope = "https://managedhsm.local/.default" },
			wantAud: "https://managedhsm.local",
		},
		"v1 resource": {
			mutate:  func(r *TokenRequest) { r.Scope = ""; r.Resource = testAudience },
			wantAud: testAudience,
		},
		"v1 resource with slash": {
			mutate:  func(r *TokenRequest) { r.Scope = ""; r.Resource = testAudience + "/" },
			wantAud: testAudience,
		},
		"scope and same resource": {
			mutate:  func(r *TokenRequest) { r.Resource = testAudience },
			wantAud: testAudience,
		},
		"bad secret": {
			mutate:   func(r *TokenRequest) { r.ClientSecret = secret + "x" },
			wantCode: OAuthInvalidClient, wantIn: "AADSTS7000215",
		},
		"unknown client": {
			mutate:   func(r *TokenRequest) { r.ClientID = "00000000-0000-0000-0000-000000000000" },
			wantCode: OAuthInvalidClient, wantIn: "AADSTS7000215",
		},
		"no secret": {
			mutate:   func(r *TokenRequest) { r.ClientSecret = "" },
			wantCode: OAuthInvalidClient, wantIn: "client_secret",
		},
		"no client id": {
			mutate:   func(r *TokenRequest) { r.ClientID = "" },
			wantCode: OAuthInvalidRequest, wantIn: "client_id",
		},
		"wrong grant type": {
			mutate:   func(r *TokenRequest) { r.GrantType = "password" },
			wantCode: OAuthUnsupportedGrantType, wantIn: "password",
		},
		"no grant type": {
			mutate:   func(r *TokenRequest) { r.GrantType = "" },
			wantCode: OAuthInvalidRequest, wantIn: "grant_type",
		},
		"wrong tenant": {
			mutate:   func(r *TokenRequest) { r.TenantID = "other-tenant" },
			wantCode: OAuthInvalidRequest, wantIn: "other-tenant",
		},
		"no tenant": {
			mutate:   func(r *TokenRequest) { r.TenantID = "" },
			wantCode: OAuthInvalidRequest, wantIn: "AADSTS90002",
		},
		"audience not allowed": {
			mutate:   func(r *TokenRequest) { r.Scope = "https://vault.azure.net/.default" },
			wantCode: OAuthInvalidScope, wantIn: "https://vault.azure.net",
		},
		"v1 resource not allowed": {
			mutate:   func(r *TokenRequest) { r.Scope = ""; r.Resource = "https://graph.microsoft.com" },
			wantCode: OAuthInvalidScope, wantIn: "AADSTS500011",
		},
		"scope without .default": {
			mutate:   func(r *TokenRequest) { r.Scope = testAudience + "/keys.read" },
			wantCode: OAuthInvalidScope, wantIn: "/.default",
		},
		"only oidc scopes": {
			mutate:   func(r *TokenRequest) { r.Scope = "openid profile" },
			wantCode: OAuthInvalidScope,
		},
		"bare .default": {
			mutate:   func(r *TokenRequest) { r.Scope = "/.default" },
			wantCode: OAuthInvalidScope,
		},
		"two resources": {
			mutate:   func(r *TokenRequest) { r.Scope = testAudience + "/.default https://managedhsm.local/.default" },
			wantCode: OAuthInvalidScope,
		},
		"no scope or resource": {
			mutate:   func(r *TokenRequest) { r.Scope = "" },
			wantCode: OAuthInvalidRequest, wantIn: "scope",
		},
		"scope and other resource": {
			mutate:   func(r *TokenRequest) { r.Resource = "https://managedhsm.local" },
			wantCode: OAuthInvalidRequest,
		},
		"bad secret for disallowed audience": {
			mutate: func(r *TokenRequest) {
				r.ClientSecret = "wrong"
				r.Scope = "https://vault.azure.net/.default"
			},
			wantCode: OAuthInvalidClient, // authentication comes before the resource check
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := good
			tc.mutate(&req)
			d := tc.dir
			if d == nil {
				d = dir
			}
			resp, err := iss.Token(context.Background(), d, req, allowed)
			if tc.wantCode != "" {
				var oe *OAuthError
				if !errors.As(err, &oe) {
					t.Fatalf("Token error = %v, want an OAuthError", err)
				}
				if oe.Code != tc.wantCode || !strings.Contains(oe.Description, tc.wantIn) {
					t.Fatalf("Token error = %q %q, want %s with %q", oe.Code, oe.Description, tc.wantCode, tc.wantIn)
				}
				if !strings.HasPrefix(oe.Description, "AADSTS") || len(oe.ErrorCodes) != 1 {
					t.Errorf("OAuthError = %+v, want an AADSTS code", oe)
				}
				if strings.Contains(oe.Description, secret) {
					t.Errorf("error description contains the secret")
				}
				if resp != (TokenResponse{}) {
					t.Errorf("Token returned %+v with an error", resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token error = %v", err)
			}
			if resp.TokenType != "Bearer" || resp.ExpiresIn != 3600 || resp.ExtExpiresIn != 3600 || resp.AccessToken == "" {
				t.Fatalf("TokenResponse = %+v", resp)
			}
			v := newTestValidator(t, ValidatorConfig{Local: iss, LocalAudiences: []string{tc.wantAud}, Now: fixedNow(t0)})
			caller, err := v.Validate(context.Background(), resp.AccessToken)
			if err != nil {
				t.Fatalf("issued token does not validate for audience %s: %v", tc.wantAud, err)
			}
			if caller.ObjectID != testOID || caller.ClientID != testClientID {
				t.Fatalf("Caller = %+v", caller)
			}
			if claims := tokenClaimsOf(t, resp.AccessToken); claims["aud"] != tc.wantAud {
				t.Fatalf("aud = %v, want %s", claims["aud"], tc.wantAud)
			}
		})
	}
}

func TestTokenUnknownAndWrongSecretLookAlike(t *testing.T) {
	const secret = "tsr~abcdefghijklmnopqrstuvwxyz0123456789AB"
	iss := newTestIssuer(t, fixedNow(t0))
	dir := memDirectory{principals: map[string]Principal{testClientID: testPrincipal(secret)}}
	req := TokenRequest{TenantID: testTenant, GrantType: "client_credentials", ClientID: testClientID, ClientSecret: "wrong", Scope: testAudience + "/.default"}
	_, errWrong := iss.Token(context.Background(), dir, req, []string{testAudience})
	req.ClientID = "unknown"
	_, errUnknown := iss.Token(context.Background(), dir, req, []string{testAudience})
	if errWrong == nil || errUnknown == nil || errWrong.Error() != errUnknown.Error() {
		t.Fatalf("errors differ: %v / %v", errWrong, errUnknown)
	}
}

func TestTokenDirectoryFailure(t *testing.T) {
	iss := newTestIssuer(t, fixedNow(t0))
	boom := errors.New("store sealed")
	req := TokenRequest{TenantID: testTenant, GrantType: "client_credentials", ClientID: testClientID, ClientSecret: "s", Scope: testAudience + "/.default"}
	_, err := iss.Token(context.Background(), memDirectory{err: boom}, req, []string{testAudience})
	var oe *OAuthError
	if !errors.Is(err, boom) || errors.As(err, &oe) {
		t.Fatalf("Token error = %v, want the directory's error and no OAuthError", err)
	}
}

func TestTokenLifetime(t *testing.T) {
	const secret = "tsr~s"
	iss, err := NewIssuer(IssuerConfig{Authority: testAuthority, TenantID: testTenant, Lifetime: 10 * time.Minute, Now: fixedNow(t0)}, signingKey(t, 0))
	check(t, err)
	dir := memDirectory{principals: map[string]Principal{testClientID: testPrincipal(secret)}}
	resp, err := iss.Token(context.Background(), dir, TokenRequest{
		TenantID: testTenant, GrantType: "client_credentials", ClientID: testClientID, ClientSecret: secret, Resource: testAudience,
	}, []string{testAudience})
	check(t, err)
	if resp.ExpiresIn != 600 {
		t.Fatalf("ExpiresIn = %d, want 600", resp.ExpiresIn)
	}
	if exp := tokenClaimsOf(t, resp.AccessToken)["exp"].(float64); int64(exp) != t0.Add(10*time.Minute).Unix() {
		t.Fatalf("exp = %v, want %d", exp, t0.Add(10*time.Minute).Unix())
	}
}
