package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"

	"tresor/internal/server/servertest"
)

// TestARMClient uses the official Azure SDK for Go's resource manager
// client (armkeyvault) with Tresor as its resource manager: create (an ARM
// long-running operation), get, list, update, delete, list deleted, get
// deleted, purge.
func TestARMClient(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	hc := s.HTTPClient(t)
	tresorCloud := cloud.Configuration{
		ActiveDirectoryAuthorityHost: s.Endpoint + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: s.Endpoint, Audience: "https://management.core.windows.net/"},
		},
	}
	opts := azcore.ClientOptions{Cloud: tresorCloud, Transport: hc}
	cred, err := azidentity.NewClientSecretCredential(s.TenantID, s.ClientID, s.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	hsms, err := armkeyvault.NewManagedHsmsClient(c.sub(), cred, &arm.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	poller, err := hsms.BeginCreateOrUpdate(ctx, "rg-arm", "armhsm", armkeyvault.ManagedHsm{
		Location: to.Ptr("local"),
		SKU:      &armkeyvault.ManagedHsmSKU{Family: to.Ptr(armkeyvault.ManagedHsmSKUFamilyB), Name: to.Ptr(armkeyvault.ManagedHsmSKUNameStandardB1)},
		Tags:     map[string]*string{"env": to.Ptr("test")},
		Properties: &armkeyvault.ManagedHsmProperties{
			TenantID:                  to.Ptr(s.TenantID),
			InitialAdminObjectIDs:     []*string{to.Ptr(s.ObjectID)},
			EnableSoftDelete:          to.Ptr(true),
			SoftDeleteRetentionInDays: to.Ptr(int32(7)),
		},
	}, nil)
	if err != nil {
		t.Fatalf("begin create: %v", err)
	}
	created, err := poller.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if *created.Properties.HsmURI != s.HSMURL("armhsm")+"/" || *created.Properties.SecurityDomainProperties.ActivationStatus != armkeyvault.ActivationStatusNotActivated {
		t.Fatalf("created: %+v", created.Properties)
	}
	got, err := hsms.Get(ctx, "rg-arm", "armhsm", nil)
	if err != nil || *got.Tags["env"] != "test" {
		t.Fatalf("get: %v", err)
	}
	n := 0
	for pager := hsms.NewListByResourceGroupPager("rg-arm", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 1 {
		t.Fatalf("listed %d HSMs", n)
	}
	// A second BeginCreateOrUpdate updates (Terraform, Bicep and az
	// update-hsm re-apply the resource): tags replaced, an identity added
	// (TestAzureCLI turns purge protection on; here the HSM is purged).
	again, err := hsms.BeginCreateOrUpdate(ctx, "rg-arm", "armhsm", armkeyvault.ManagedHsm{
		Location: to.Ptr("Local"),
		SKU:      &armkeyvault.ManagedHsmSKU{Family: to.Ptr(armkeyvault.ManagedHsmSKUFamilyB), Name: to.Ptr(armkeyvault.ManagedHsmSKUNameStandardB1)},
		Tags:     map[string]*string{"env": to.Ptr("staging"), "team": to.Ptr("ops")},
		Identity: &armkeyvault.ManagedServiceIdentity{Type: to.Ptr(armkeyvault.ManagedServiceIdentityTypeSystemAssigned)},
		Properties: &armkeyvault.ManagedHsmProperties{
			TenantID:                  to.Ptr(s.TenantID),
			InitialAdminObjectIDs:     []*string{to.Ptr(s.ObjectID)},
			EnableSoftDelete:          to.Ptr(true),
			SoftDeleteRetentionInDays: to.Ptr(int32(7)),
			EnablePurgeProtection:     to.Ptr(false),
		},
	}, nil)
	if err != nil {
		t.Fatalf("begin create or update of an existing HSM: %v", err)
	}
	reapplied, err := again.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatalf("create or update of an existing HSM: %v", err)
	}
	if *reapplied.Tags["env"] != "staging" || *reapplied.Tags["team"] != "ops" || *reapplied.Properties.EnablePurgeProtection ||
		*reapplied.Identity.Type != armkeyvault.ManagedServiceIdentityTypeSystemAssigned || *reapplied.ID != *created.ID {
		t.Fatalf("updated by PUT: %+v", reapplied)
	}
	_, err = hsms.BeginCreateOrUpdate(ctx, "rg-arm", "armhsm", armkeyvault.ManagedHsm{
		Location:   to.Ptr("westeurope"),
		Properties: &armkeyvault.ManagedHsmProperties{InitialAdminObjectIDs: []*string{to.Ptr(s.ObjectID)}},
	}, nil)
	if httpStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "location") {
		t.Fatalf("changing the location: %v", err)
	}
	up, err := hsms.BeginUpdate(ctx, "rg-arm", "armhsm", armkeyvault.ManagedHsm{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	updated, err := up.PollUntilDone(ctx, nil)
	if err != nil || *updated.Tags["env"] != "prod" {
		t.Fatalf("update: %v", err)
	}
	del, err := hsms.BeginDelete(ctx, "rg-arm", "armhsm", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := hsms.Get(ctx, "rg-arm", "armhsm", nil); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	deleted, err := hsms.GetDeleted(ctx, "armhsm", "local", nil)
	if err != nil || *deleted.Properties.MhsmID != *created.ID {
		t.Fatalf("get deleted: %v", err)
	}
	purge, err := hsms.BeginPurgeDeleted(ctx, "armhsm", "local", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := purge.PollUntilDone(ctx, nil); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := hsms.GetDeleted(ctx, "armhsm", "local", nil); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("get deleted after purge: %v", err)
	}
}
