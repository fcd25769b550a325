package cli_test

import (
	"net/http"
	"testing"
)

func TestSettingCommands(t *testing.T) {
	r, env := region(t)
	roleTestFakeHSM(t, r)
	if out := ok(t, env, "setting", "list", "--hsm-name", "hsm1", "-o", "tsv"); out != "AllowKeyManagementOperationsThroughARM\tboolean\tfalse\n" {
		t.Errorf("setting list -o tsv = %q", out)
	}
	out := ok(t, env, "setting", "update", "--hsm-name", "hsm1", "--name", "AllowKeyManagementOperationsThroughARM", "--value", "true")
	if s := decode[map[string]string](t, out); s["value"] != "true" || s["settingType"] != "boolean" {
		t.Errorf("setting update printed %s", out)
	}
	if req := roleTestLastHSM(t, r, http.MethodPatch); req.Path != "/settings/AllowKeyManagementOperationsThroughARM" || string(req.Body) != `{"value":"true"}` {
		t.Errorf("PATCH %s %s", req.Path, req.Body)
	}
}
