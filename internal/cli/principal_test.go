package cli_test

import (
	"strings"
	"testing"

	"tresor/internal/wire"
)

func TestPrincipalCommands(t *testing.T) {
	r, env := region(t)
	p := decode[wire.Principal](t, ok(t, env, "principal", "create", "--display-name", "ops team", "--region-admin"))
	if p.ClientSecret == "" || p.ObjectID == "" || p.DisplayName != "ops team" || !p.RegionAdmin {
		t.Fatalf("principal create = %+v", p)
	}
	// The new principal signs in with what create printed.
	creds := map[string]string{"TRESOR_SERVER": r.URL, "TRESOR_CA_FILE": r.CAFile, "TRESOR_CLIENT_ID": p.ClientID,
		"TRESOR_CLIENT_SECRET": p.ClientSecret, "TRESOR_CONFIG_DIR": t.TempDir()}
	if got := ok(t, creds, "account", "show", "--query", "objectId", "-o", "tsv"); got != p.ObjectID+"\n" {
		t.Errorf("new principal's account = %q", got)
	}

	list := decode[[]wire.Principal](t, ok(t, env, "principal", "list"))
	if len(list) != 2 {
		t.Errorf("principal list = %+v", list)
	}
	for _, q := range list {
		if q.ClientSecret != "" {
			t.Errorf("list shows a secret for %s", q.DisplayName)
		}
	}
	table := ok(t, env, "principal", "list", "-o", "table", "--query", "[?displayName=='ops team'].{Name: displayName, Admin: regionAdmin}")
	if !strings.Contains(table, "ops team") || !strings.Contains(table, "True") {
		t.Errorf("principal list -o table:\n%s", table)
	}

	if got := decode[wire.Principal](t, ok(t, env, "principal", "delete", "--id", p.ObjectID)); got.ObjectID != p.ObjectID {
		t.Errorf("principal delete printed %+v", got)
	}
	res := tresor(t, env, "principal", "delete", "--id", p.ObjectID)
	if res.code != 2 || !strings.Contains(res.stderr, "tresor: error: PrincipalNotFound") {
		t.Errorf("second delete: %+v", res)
	}
	if res := tresor(t, env, "principal", "create"); res.code != 1 || !strings.Contains(res.stderr, "--display-name is required") {
		t.Errorf("create without name: %+v", res)
	}
}
