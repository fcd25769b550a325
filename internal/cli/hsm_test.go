package cli_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"tresor/internal/client/clienttest"
	"tresor/internal/wire"
)

// lastBody returns the body of the last request with method whose path ends with suffix.
func lastBody(t *testing.T, reqs []clienttest.Request, method, suffix string) map[string]any {
	t.Helper()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && strings.HasSuffix(reqs[i].Path, suffix) {
			var m map[string]any
			if err := json.Unmarshal(reqs[i].Body, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s …%s request", method, suffix)
	return nil
}

func TestCreateFlags(t *testing.T) {
	r, env := region(t)
	out := ok(t, env, "create", "--hsm-name", "hsm1", "--resource-group", "rg1", "--location", "local",
		"--administrators", r.ObjectID, "11111111-2222-3333-4444-555555555555", "--administrators", "66666666-7777-8888-9999-000000000000",
		"--tags", "env=dev", "team=a=b", "--tags", "solo", "--retention-days", "7", "--enable-purge-protection")
	h := decode[wire.ManagedHSM](t, out)
	if h.Name != "hsm1" || h.Properties.ProvisioningState != "Succeeded" {
		t.Errorf("printed %+v", h)
	}
	body := lastBody(t, r.Requests(), http.MethodPut, "/managedHSMs/hsm1")
	props := body["properties"].(map[string]any)
	if got := props["initialAdminObjectIds"].([]any); len(got) != 3 {
		t.Errorf("initialAdminObjectIds = %v, want 3", got)
	}
	if got := body["tags"].(map[string]any); len(got) != 3 || got["team"] != "a=b" || got["solo"] != "" {
		t.Errorf("tags = %v", got)
	}
	for k, want := range map[string]any{"softDeleteRetentionInDays": 7.0, "enablePurgeProtection": true, "enableSoftDelete": true, "createMode": "default", "tenantId": r.Info.TenantID} {
		if props[k] != want {
			t.Errorf("properties.%s = %v, want %v", k, props[k], want)
		}
	}
	if sku := body["sku"].(map[string]any); sku["family"] != "B" || sku["name"] != "Standard_B1" {
		t.Errorf("sku = %v", sku)
	}
	var printed map[string]any
	_ = json.Unmarshal([]byte(out), &printed)
	if printed["resourceGroup"] != "rg1" {
		t.Errorf("output lacks resourceGroup rg1 (az adds it): %v", printed["resourceGroup"])
	}
	if !strings.HasPrefix(out, "{\n  \"id\": ") {
		t.Errorf("output is not sorted 2-space JSON:\n%s", out)
	}

	// Without --location, the region's name; with --no-wait, no output.
	res := tresor(t, env, "create", "-n", "hsm2", "-g", "rg2", "--administrators", r.ObjectID, "--no-wait")
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("create --no-wait: %+v", res)
	}
	body = lastBody(t, r.Requests(), http.MethodPut, "/managedHSMs/hsm2")
	if body["location"] != "local" {
		t.Errorf("default location %v, want the region's", body["location"])
	}
	if _, ok := body["properties"].(map[string]any)["enablePurgeProtection"]; ok {
		t.Errorf("enablePurgeProtection sent though not given")
	}
}

func TestHSMCommands(t *testing.T) {
	r, env := region(t)
	ok(t, env, "create", "--hsm-name", "alpha", "-g", "rg1", "--administrators", r.ObjectID)
	ok(t, env, "create", "--hsm-name", "beta", "-g", "rg2", "--administrators", r.ObjectID, "--tags", "a=1")

	if got := ok(t, env, "list", "--query", "[].name", "-o", "tsv"); got != "alpha\nbeta\n" {
		t.Errorf("list names = %q", got)
	}
	if got := ok(t, env, "list", "-g", "rg2", "--resource-type", "hsm", "--query", "length(@)"); got != "1\n" {
		t.Errorf("list -g rg2 = %q", got)
	}
	table := ok(t, env, "list", "-o", "table")
	wantTable := "Name   ResourceGroup  Location  ActivationStatus  ProvisioningState\n" +
		"-----  -------------  --------  ----------------  -----------------\n" +
		"alpha  rg1            local     NotActivated      Succeeded\n" +
		"beta   rg2            local     NotActivated      Succeeded\n"
	if table != wantTable {
		t.Errorf("list -o table:\n%s\nwant\n%s", table, wantTable)
	}

	// show with and without the resource group
	if got := ok(t, env, "show", "--hsm-name", "beta", "--query", "resourceGroup", "-o", "tsv"); got != "rg2\n" {
		t.Errorf("show without -g: %q", got)
	}
	if got := ok(t, env, "show", "--hsm-name", "beta", "-g", "rg2", "--query", "tags.a", "-o", "tsv"); got != "1\n" {
		t.Errorf("show -g: %q", got)
	}

	// update, also as update-hsm, with az's spelled-out booleans
	out := ok(t, env, "update-hsm", "--hsm-name", "beta", "--enable-purge-protection", "true", "--tags", "b=2", "c=3")
	h := decode[wire.ManagedHSM](t, out)
	if !*h.Properties.EnablePurgeProtection || len(h.Tags) != 2 || h.Tags["c"] != "3" {
		t.Errorf("after update: %+v, tags %v", h.Properties, h.Tags)
	}
	out = ok(t, env, "update", "--hsm-name", "beta", "-g", "rg2", "--tags", "")
	if h := decode[wire.ManagedHSM](t, out); len(h.Tags) != 0 {
		t.Errorf("tags after --tags \"\": %v", h.Tags)
	}
	res := tresor(t, env, "update", "--hsm-name", "beta", "--enable-purge-protection", "false")
	if res.code != 2 || !strings.Contains(res.stderr, "tresor: error: BadRequest: Purge protection cannot be disabled") {
		t.Errorf("disabling purge protection: %+v", res)
	}

	// delete, list-deleted, recover, delete again, purge
	for _, n := range []string{"alpha", "beta"} {
		if got := ok(t, env, "delete", "--hsm-name", n); got != "" {
			t.Errorf("delete printed %q", got)
		}
	}
	deleted := decode[[]wire.DeletedManagedHSM](t, ok(t, env, "list-deleted", "--resource-type", "hsm"))
	if len(deleted) != 2 || deleted[0].Properties.MhsmID == "" {
		t.Fatalf("list-deleted = %+v", deleted)
	}
	dt := ok(t, env, "list-deleted", "-o", "table")
	if !strings.HasPrefix(dt, "Name   Location  DeletionDate") || !strings.Contains(dt, "beta   local") || !strings.Contains(dt, "True") {
		t.Errorf("list-deleted -o table:\n%s", dt)
	}
	out = ok(t, env, "recover", "--hsm-name", "alpha")
	if h := decode[wire.ManagedHSM](t, out); h.Name != "alpha" || !strings.Contains(h.ID, "/resourceGroups/rg1/") {
		t.Errorf("recovered %+v", h)
	}
	res = tresor(t, env, "purge", "--hsm-name", "beta", "--location", "local")
	if res.code != 2 || !strings.Contains(res.stderr, "tresor: error: Conflict: Purge protection is enabled") {
		t.Errorf("purge of protected HSM: %+v", res)
	}
	ok(t, env, "delete", "--hsm-name", "alpha", "-g", "rg1")
	if got := ok(t, env, "purge", "--hsm-name", "alpha"); got != "" {
		t.Errorf("purge printed %q", got)
	}
	names := ok(t, env, "list-deleted", "--query", "[].name", "-o", "tsv")
	if names != "beta\n" {
		t.Errorf("deleted after purge: %q", names)
	}
	if got := ok(t, env, "list"); got != "[]\n" {
		t.Errorf("list of none = %q", got)
	}
	// Every ARM request carried an api-version; the fake refuses others,
	// but check that none slipped through.
	for _, req := range r.Requests() {
		if strings.HasPrefix(req.Path, "/subscriptions/") && req.Query.Get("api-version") == "" {
			t.Errorf("%s %s without api-version", req.Method, req.Path)
		}
	}
	if !slices.ContainsFunc(r.Requests(), func(q clienttest.Request) bool { return strings.HasPrefix(q.Path, "/tresor/operations/") }) {
		t.Error("no operation was polled")
	}
}
