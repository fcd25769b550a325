package cli_test

import (
	"testing"

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
