package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"tresor/internal/wire"
)

func TestAccountShow(t *testing.T) {
	r, env := region(t)
	a := decode[wire.Account](t, ok(t, env, "account", "show"))
	if a.ObjectID != r.ObjectID || a.ClientID != r.ClientID || a.TenantID != r.Info.TenantID || a.Region != "local" || !a.RegionAdmin {
		t.Errorf("account show = %+v", a)
	}
	// A list prints one row per item, a top-level bool in lower case (as az).
	if got := ok(t, env, "account", "show", "--query", "[objectId, regionAdmin]", "-o", "tsv"); got != r.ObjectID+"\ntrue\n" {
		t.Errorf("account show -o tsv = %q", got)
	}
}

func TestAccountGetAccessToken(t *testing.T) {
	r, env := region(t)
	type token struct {
		AccessToken  string `json:"accessToken"`
		ExpiresOn    string `json:"expiresOn"`
		ExpiresOnSec int64  `json:"expires_on"`
		Subscription string `json:"subscription"`
		Tenant       string `json:"tenant"`
		TokenType    string `json:"tokenType"`
	}
	aud := func(t *testing.T, jwt string) string {
		t.Helper()
		parts := strings.Split(jwt, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWT: %q", jwt)
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Aud string `json:"aud"`
		}
		_ = json.Unmarshal(b, &c)
		return c.Aud
	}
	tests := map[string]struct {
		args    []string
		wantAud string
	}{
		"default: the control plane": {nil, r.Info.ManagementResource},
		"--resource":                 {[]string{"--resource", r.Info.HSMResource}, r.Info.HSMResource},
		"--scope":                    {[]string{"--scope", r.Info.HSMResource + "/.default"}, r.Info.HSMResource},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := decode[token](t, ok(t, env, append([]string{"account", "get-access-token"}, tc.args...)...))
			if got.TokenType != "Bearer" || got.Tenant != r.Info.TenantID || got.Subscription != r.Info.SubscriptionID ||
				got.ExpiresOnSec <= time.Now().Unix() || got.ExpiresOn != time.Unix(got.ExpiresOnSec, 0).Local().Format("2006-01-02 15:04:05.000000") {
				t.Fatalf("get-access-token = %+v", got)
			}
			if a := aud(t, got.AccessToken); strings.TrimSuffix(a, "/") != strings.TrimSuffix(tc.wantAud, "/") {
				t.Fatalf("aud %q, want %q", a, tc.wantAud)
			}
		})
	}
}
