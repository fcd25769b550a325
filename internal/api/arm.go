package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"tresor/internal/fault"
	"tresor/internal/identity"
	"tresor/internal/instances"
	"tresor/internal/location"
	"tresor/internal/wire"
)

const notActivatedMessage = "Your HSM has been provisioned, but cannot be used for cryptographic operations until it is activated. To activate the HSM, download the security domain."

// hsmURI is the instance's data-plane URL.
func (a *API) hsmURI(key string) string {
	host := key + "." + a.cfg.DNSSuffix
	if a.cfg.Port != 443 && a.cfg.Port != 0 {
		host = fmt.Sprintf("%s:%d", host, a.cfg.Port)
	}
	return "https://" + host + "/"
}

func (a *API) toARM(in instances.Instance) wire.ManagedHSM {
	t, f := true, in.PurgeProtection
	days := in.RetentionDays
	created, modified := in.Created, in.LastModified
	status := "The Managed HSM is provisioned and ready to use."
	sd := &wire.SecurityDomainProperties{ActivationStatus: in.ActivationStatus, ActivationStatusMessage: in.ActivationMessage}
	if in.ActivationStatus == instances.NotActivated && sd.ActivationStatusMessage == "" {
		sd.ActivationStatusMessage = notActivatedMessage
	}
	out := wire.ManagedHSM{
		ID:       armID(in.Subscription, in.ResourceGroup, in.Name),
		Name:     in.Name,
		Type:     "Microsoft.KeyVault/managedHSMs",
		Location: in.Location,
		SKU:      &wire.SKU{Family: in.SKUFamily, Name: in.SKUName},
		Tags:     in.Tags,
		SystemData: &wire.SystemData{
			CreatedBy: in.CreatedBy, CreatedByType: "Application", CreatedAt: &created,
			LastModifiedBy: in.LastModifiedBy, LastModifiedByType: "Application", LastModifiedAt: &modified,
		},
		Properties: wire.ManagedHSMProps{
			TenantID:                  in.TenantID,
			InitialAdminObjectIDs:     in.InitialAdmins,
			HsmURI:                    a.hsmURI(in.Key),
			EnableSoftDelete:          &t,
			SoftDeleteRetentionInDays: &days,
			EnablePurgeProtection:     &f,
			StatusMessage:             status,
			ProvisioningState:         "Succeeded",
			NetworkACLs:               in.NetworkACLs,
			PublicNetworkAccess:       orDefault(in.PublicNetwork, "Enabled"),
			SecurityDomainProperties:  sd,
		},
	}
	if in.Deleted {
		d := in.ScheduledPurgeDate
		out.Properties.ScheduledPurgeDate = &d
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func armID(sub, rg, name string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/managedHSMs/" + name
}

func (a *API) toDeleted(in instances.Instance) wire.DeletedManagedHSM {
	return wire.DeletedManagedHSM{
		ID:   "/subscriptions/" + in.Subscription + "/providers/Microsoft.KeyVault/locations/" + in.Location + "/deletedManagedHSMs/" + in.Name,
		Name: in.Name,
		Type: "Microsoft.KeyVault/deletedManagedHSMs",
		Properties: wire.DeletedManagedHSMProps{
			MhsmID:                 armID(in.Subscription, in.ResourceGroup, in.Name),
			Location:               in.Location,
			DeletionDate:           in.DeletionDate,
			ScheduledPurgeDate:     in.ScheduledPurgeDate,
			PurgeProtectionEnabled: in.PurgeProtection,
			Tags:                   in.Tags,
		},
	}
}

func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	writeJSON(w, http.StatusOK, wire.SubscriptionList{Value: []wire.Subscription{a.subscription(a.cfg.Subscription)}})
	return nil
}

func (a *API) subscription(id string) wire.Subscription {
	return wire.Subscription{
		ID: "/subscriptions/" + id, SubscriptionID: id, TenantID: a.cfg.TenantID,
		DisplayName: "Tresor region " + a.cfg.Region, State: "Enabled",
	}
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	writeJSON(w, http.StatusOK, a.subscription(r.PathValue("sub")))
	return nil
}

func (a *API) listLocations(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	sub := r.PathValue("sub")
	writeJSON(w, http.StatusOK, wire.LocationList{Value: []wire.Location{{
		ID: "/subscriptions/" + sub + "/locations/" + a.cfg.Region, Name: a.cfg.Region,
		DisplayName: a.displayName(), RegionalName: a.displayName(), Type: "Region", SubscriptionID: sub,
	}}})
	return nil
}

// displayName is the region's display name (its name if none is set).
func (a *API) displayName() string {
	if a.cfg.RegionDisplayName != "" {
		return a.cfg.RegionDisplayName
	}
	return a.cfg.Region
}

func (a *API) putHSM(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	sub, rg, name := r.PathValue("sub"), r.PathValue("rg"), r.PathValue("name")
	var body wire.ManagedHSM
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	p := body.Properties
	if strings.EqualFold(p.CreateMode, "recover") {
		in, err := a.deps.Instances.GetDeleted(r.Context(), sub, name)
		if err != nil {
			return err
		}
		if !strings.EqualFold(in.ResourceGroup, rg) {
			return fault.New(fault.BadParameter, "BadRequest", "the deleted managed HSM '%s' belongs to resource group '%s'", name, in.ResourceGroup)
		}
		in, err = a.deps.Instances.Recover(r.Context(), rc.instCaller(), sub, name)
		if err != nil {
			return err
		}
		a.asyncHeader(w, sub, in.Location, "recover-"+in.Key)
		writeJSON(w, http.StatusOK, a.toARM(in))
		return nil
	}
	if p.CreateMode != "" && !strings.EqualFold(p.CreateMode, "default") {
		return fault.New(fault.BadParameter, "BadRequest", "properties.createMode must be 'default' or 'recover', not '%s'", p.CreateMode)
	}
	if p.EnableSoftDelete != nil && !*p.EnableSoftDelete {
		return fault.New(fault.BadParameter, "BadRequest", "soft delete is always enabled for managed HSMs; properties.enableSoftDelete cannot be false")
	}
	for _, id := range p.InitialAdminObjectIDs {
		if !instances.IsUUID(id) {
			return fault.New(fault.BadParameter, "BadRequest", "properties.initialAdminObjectIds: %q is not an object id (uuid)", id)
		}
	}
	if err := a.knownPrincipals(r.Context(), "properties.initialAdminObjectIds", p.InitialAdminObjectIDs...); err != nil {
		return err
	}
	tenant, err := a.tenantFor(rc.caller, p.TenantID)
	if err != nil {
		return err
	}
	req := instances.CreateRequest{
		Name: name, Subscription: sub, ResourceGroup: rg, Location: body.Location, Tags: body.Tags, TenantID: tenant,
		InitialAdmins: p.InitialAdminObjectIDs, NetworkACLs: p.NetworkACLs, PublicNetwork: p.PublicNetworkAccess,
	}
	if p.SoftDeleteRetentionInDays != nil {
		req.RetentionDays = *p.SoftDeleteRetentionInDays
		if req.RetentionDays == 0 {
			return fault.New(fault.BadParameter, "BadRequest", "properties.softDeleteRetentionInDays must be between 7 and 90, got 0")
		}
	}
	if p.EnablePurgeProtection != nil {
		req.PurgeProtection = *p.EnablePurgeProtection
	}
	if body.SKU != nil {
		req.SKUFamily, req.SKUName = body.SKU.Family, body.SKU.Name
	}
	in, err := a.deps.Instances.Create(r.Context(), rc.instCaller(), req)
	if err != nil {
		return err
	}
	// 202 with the operation's status URL, as ARM answers a create of a
	// managed HSM (its clients accept 200 or 202 here, not 201); the
	// operation is complete already.
	a.asyncHeader(w, sub, in.Location, "create-"+in.Key)
	writeJSON(w, http.StatusAccepted, a.toARM(in))
	return nil
}

// tenantFor returns the tenant an HSM that caller creates records: the
// tenant the request names (requested), if the region trusts it for the
// caller, else an error naming the config keys that would; with none
// named, the caller's own tenant if trusted, else the region's.
//
// Every caller may name the region's tenant (identity.tenantId). A caller
// of a trusted issuer may also name the issuer's tenants: its configured
// tenantIds, or the tid of its token when the issuer lists none.
func (a *API) tenantFor(c identity.Caller, requested string) (string, error) {
	var trusted []string
	if !c.Local && c.Issuer != "" {
		trusted = a.cfg.IssuerTenants[c.Issuer]
		if len(trusted) == 0 && c.TenantID != "" {
			trusted = []string{c.TenantID}
		}
	}
	has := func(t string) (string, bool) {
		if strings.EqualFold(t, a.cfg.TenantID) {
			return a.cfg.TenantID, true
		}
		for _, x := range trusted {
			if strings.EqualFold(t, x) {
				return x, true
			}
		}
		return "", false
	}
	if requested == "" {
		if t, ok := has(c.TenantID); ok && c.TenantID != "" {
			return t, nil
		}
		return a.cfg.TenantID, nil
	}
	if t, ok := has(requested); ok {
		return t, nil
	}
	return "", fault.New(fault.BadParameter, "BadRequest",
		"properties.tenantId '%s' is not a tenant this region trusts for the caller: the region's tenant is '%s' (config identity.tenantId); "+
			"a trusted issuer's principals may also name its tenants (config identity.trustedIssuers[].tenantIds, or its tokens' tid claim when it lists none)",
		requested, a.cfg.TenantID)
}

// asyncHeader points ARM clients at the status of a finished operation.
// Operations on instances complete before the answer, so the status route
// reports them from the instance's state.
func (a *API) asyncHeader(w http.ResponseWriter, sub, loc, op string) {
	u := strings.TrimSuffix(a.cfg.Authority, "/") + "/subscriptions/" + sub + "/providers/Microsoft.KeyVault/locations/" +
		loc + "/operationResults/" + url.PathEscape(op) + "?api-version=2023-07-01"
	w.Header().Set("Azure-AsyncOperation", u)
	w.Header().Set("Retry-After", "1")
}

func (a *API) operationResult(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	op := r.PathValue("op")
	verb, key, ok := strings.Cut(op, "-")
	if !ok {
		return fault.New(fault.NotFound, "OperationNotFound", "no operation '%s'", op)
	}
	now := a.cfg.Now().UTC()
	st := wire.OperationStatus{ID: r.URL.Path, Name: op, Status: "Succeeded", EndTime: &now}
	switch verb {
	case "create", "recover":
		if _, err := a.deps.Instances.Get(r.Context(), key); err != nil {
			return fault.New(fault.NotFound, "OperationNotFound", "no operation '%s'", op)
		}
	case "purge":
		if _, err := a.deps.Instances.GetDeleted(r.Context(), "", key); err == nil {
			st.Status = "InProgress"
			st.EndTime = nil
		}
	default:
		return fault.New(fault.NotFound, "OperationNotFound", "no operation '%s'", op)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (a *API) getHSM(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	in, err := a.deps.Instances.GetIn(r.Context(), r.PathValue("sub"), r.PathValue("rg"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.toARM(in))
	return nil
}

func (a *API) patchHSM(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var body wire.ManagedHSMPatch
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	in, err := a.deps.Instances.Update(r.Context(), rc.instCaller(), r.PathValue("sub"), r.PathValue("rg"), r.PathValue("name"),
		func(p *instances.Properties) error {
			if body.Tags != nil {
				if len(body.Tags) > 50 {
					return fault.New(fault.BadParameter, "InvalidTagsCount", "at most 50 tags")
				}
				p.Tags = maps.Clone(body.Tags)
			}
			if body.SKU != nil && body.SKU.Name != "" {
				p.SKUName = body.SKU.Name
			}
			if bp := body.Properties; bp != nil {
				if bp.EnablePurgeProtection != nil {
					if p.PurgeProtection && !*bp.EnablePurgeProtection {
						return fault.New(fault.BadParameter, "BadRequest", "purge protection cannot be disabled once it is enabled")
					}
					p.PurgeProtection = *bp.EnablePurgeProtection
				}
				if bp.SoftDeleteRetentionInDays != nil && *bp.SoftDeleteRetentionInDays != p.RetentionDays {
					return fault.New(fault.BadParameter, "BadRequest", "properties.softDeleteRetentionInDays cannot be changed after creation")
				}
				if bp.EnableSoftDelete != nil && !*bp.EnableSoftDelete {
					return fault.New(fault.BadParameter, "BadRequest", "soft delete is always enabled for managed HSMs")
				}
				if bp.NetworkACLs != nil {
					p.NetworkACLs = bp.NetworkACLs
				}
				if bp.PublicNetworkAccess != "" {
					p.PublicNetwork = bp.PublicNetworkAccess
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.toARM(in))
	return nil
}

func (a *API) deleteHSM(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	_, err := a.deps.Instances.Delete(r.Context(), rc.instCaller(), r.PathValue("sub"), r.PathValue("rg"), r.PathValue("name"))
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) listHSMs(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := a.deps.Instances.List(r.Context(), r.PathValue("sub"), r.PathValue("rg"))
	if err != nil {
		return err
	}
	out := wire.ManagedHSMList{Value: []wire.ManagedHSM{}}
	for _, in := range list {
		out.Value = append(out.Value, a.toARM(in))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) listDeletedHSMs(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := a.deps.Instances.ListDeleted(r.Context(), r.PathValue("sub"))
	if err != nil {
		return err
	}
	out := wire.DeletedManagedHSMList{Value: []wire.DeletedManagedHSM{}}
	for _, in := range list {
		out.Value = append(out.Value, a.toDeleted(in))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getDeletedHSM(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	in, err := a.deps.Instances.GetDeleted(r.Context(), r.PathValue("sub"), r.PathValue("name"))
	if err != nil {
		return err
	}
	if !location.Equal(in.Location, r.PathValue("loc")) {
		return fault.New(fault.NotFound, "ResourceNotFound", "no deleted managed HSM named '%s' was found in location '%s'", r.PathValue("name"), r.PathValue("loc"))
	}
	writeJSON(w, http.StatusOK, a.toDeleted(in))
	return nil
}

func (a *API) purgeHSM(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	sub, loc, name := r.PathValue("sub"), r.PathValue("loc"), r.PathValue("name")
	in, err := a.deps.Instances.GetDeleted(r.Context(), sub, name)
	if err != nil {
		return err
	}
	if !location.Equal(in.Location, loc) {
		return fault.New(fault.NotFound, "ResourceNotFound", "no deleted managed HSM named '%s' was found in location '%s'", name, loc)
	}
	if err := a.deps.Instances.Purge(r.Context(), rc.instCaller(), sub, name); err != nil {
		return err
	}
	a.asyncHeader(w, sub, in.Location, "purge-"+in.Key)
	w.Header().Set("Location", w.Header().Get("Azure-AsyncOperation"))
	w.WriteHeader(http.StatusAccepted)
	return nil
}
