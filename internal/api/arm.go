package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
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
	if in.IdentityType != "" {
		out.Identity = &wire.ManagedServiceIdentity{Type: in.IdentityType}
		if len(in.UserAssignedIdentities) > 0 {
			out.Identity.UserAssignedIdentities = map[string]*wire.UserAssignedIdentity{}
			for _, id := range in.UserAssignedIdentities {
				out.Identity.UserAssignedIdentities[id] = &wire.UserAssignedIdentity{}
			}
		}
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
	if err := decodeJSONStrict(r, &body); err != nil {
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
	if err := a.checkRegions(p.Regions); err != nil {
		return err
	}
	if err := checkPublicNetworkAccess(p.PublicNetworkAccess); err != nil {
		return err
	}
	idType, userIDs, err := armIdentity(body.Identity)
	if err != nil {
		return err
	}
	// A PUT on an existing HSM is an update (az keyvault update-hsm,
	// Terraform and Bicep re-apply the whole resource).
	if in, err := a.deps.Instances.GetIn(r.Context(), sub, rg, name); err == nil {
		return a.updateByPut(w, r, rc, in, body, idType, userIDs)
	} else if f, ok := fault.As(err); !ok || f.Kind != fault.NotFound {
		return err
	}
	if err := a.knownPrincipals(r.Context(), rc.live, "properties.initialAdminObjectIds", p.InitialAdminObjectIDs...); err != nil {
		return err
	}
	tenant, err := a.tenantFor(rc.live, rc.caller, p.TenantID)
	if err != nil {
		return err
	}
	req := instances.CreateRequest{
		Name: name, Subscription: sub, ResourceGroup: rg, Location: body.Location, Tags: body.Tags, TenantID: tenant,
		InitialAdmins: p.InitialAdminObjectIDs, NetworkACLs: p.NetworkACLs, PublicNetwork: p.PublicNetworkAccess,
		IdentityType: idType, UserAssignedIdentities: userIDs,
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

// updateByPut applies a PUT of the whole resource to the existing HSM in:
// tags, network rules, public network access and identity are replaced by
// what the body holds; purge protection may be turned on (never off); what
// cannot change (location, tenant, initial administrators, SKU, retention)
// must be absent or equal, else the answer is a 400 naming the field. The
// rights are those of PATCH ([instances.Service.Update]).
func (a *API) updateByPut(w http.ResponseWriter, r *http.Request, rc *reqCtx, in instances.Instance, body wire.ManagedHSM, idType string, userIDs []string) error {
	if body.Location == "" {
		return fault.New(fault.BadParameter, "BadRequest", "location is required: the managed HSM '%s' is in '%s'", in.Name, in.Location)
	}
	if !location.Equal(body.Location, in.Location) {
		return fault.New(fault.BadParameter, "BadRequest", "location '%s' cannot change: the managed HSM '%s' is in '%s'", body.Location, in.Name, in.Location)
	}
	if err := instances.ValidateTags(body.Tags); err != nil {
		return err
	}
	bp := body.Properties
	out, err := a.deps.Instances.Update(r.Context(), rc.instCaller(), in.Subscription, in.ResourceGroup, in.Key,
		func(p *instances.Properties) error {
			if bp.TenantID != "" && !strings.EqualFold(bp.TenantID, p.TenantID) {
				return fault.New(fault.BadParameter, "BadRequest", "properties.tenantId '%s' cannot change: the managed HSM '%s' belongs to tenant '%s'", bp.TenantID, in.Name, p.TenantID)
			}
			if bp.InitialAdminObjectIDs != nil && !sameIDs(bp.InitialAdminObjectIDs, p.InitialAdmins) {
				return fault.New(fault.BadParameter, "BadRequest", "properties.initialAdminObjectIds cannot change after creation (they are %s); manage administrators with role assignments", strings.Join(p.InitialAdmins, ", "))
			}
			if body.SKU != nil && body.SKU.Family != "" && !strings.EqualFold(body.SKU.Family, p.SKUFamily) {
				return fault.New(fault.BadParameter, "BadRequest", "sku.family '%s' cannot change: the managed HSM '%s' is '%s'", body.SKU.Family, in.Name, p.SKUFamily)
			}
			if body.SKU != nil && body.SKU.Name != "" && !strings.EqualFold(body.SKU.Name, p.SKUName) {
				return fault.New(fault.BadParameter, "BadRequest", "sku.name '%s' cannot change: the managed HSM '%s' is '%s'", body.SKU.Name, in.Name, p.SKUName)
			}
			if bp.SoftDeleteRetentionInDays != nil && *bp.SoftDeleteRetentionInDays != p.RetentionDays {
				return fault.New(fault.BadParameter, "BadRequest", "properties.softDeleteRetentionInDays cannot be changed after creation (it is %d)", p.RetentionDays)
			}
			if bp.EnablePurgeProtection != nil {
				if p.PurgeProtection && !*bp.EnablePurgeProtection {
					return fault.New(fault.BadParameter, "BadRequest", "properties.enablePurgeProtection: purge protection cannot be disabled once it is enabled")
				}
				p.PurgeProtection = *bp.EnablePurgeProtection
			}
			p.Tags = maps.Clone(body.Tags)
			p.NetworkACLs = bp.NetworkACLs
			p.PublicNetwork = bp.PublicNetworkAccess
			p.IdentityType, p.UserAssignedIdentities = idType, userIDs
			return nil
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.toARM(out))
	return nil
}

// sameIDs reports whether a and b hold the same object ids, in any order
// and case.
func sameIDs(a, b []string) bool {
	norm := func(ids []string) []string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			if id = strings.ToLower(id); !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// checkRegions accepts properties.regions only if it names no region but
// this one: Tresor does not replicate an HSM to other regions.
func (a *API) checkRegions(regions []map[string]any) error {
	for i, reg := range regions {
		n, _ := reg["name"].(string)
		if !location.Equal(n, a.cfg.Region) {
			return fault.New(fault.BadParameter, "BadRequest", "properties.regions[%d]: '%s' is not this region ('%s'): Tresor does not replicate a managed HSM to other regions", i, n, a.cfg.Region)
		}
	}
	return nil
}

func checkPublicNetworkAccess(v string) error {
	if v != "" && !strings.EqualFold(v, "Enabled") && !strings.EqualFold(v, "Disabled") {
		return fault.New(fault.BadParameter, "BadRequest", "properties.publicNetworkAccess must be 'Enabled' or 'Disabled', not '%s'", v)
	}
	return nil
}

// identityTypes are ARM's managed identity types, by their spelling
// without case or spaces.
var identityTypes = map[string]string{
	"none": "None", "systemassigned": "SystemAssigned", "userassigned": "UserAssigned",
	"systemassigned,userassigned": "SystemAssigned,UserAssigned",
}

// armIdentity checks an ARM identity and returns its type as Azure spells
// it and its user-assigned identities' resource ids ("" and nil without one).
func armIdentity(id *wire.ManagedServiceIdentity) (string, []string, error) {
	if id == nil {
		return "", nil, nil
	}
	t, ok := identityTypes[strings.ToLower(strings.ReplaceAll(id.Type, " ", ""))]
	if !ok {
		return "", nil, fault.New(fault.BadParameter, "BadRequest", "identity.type must be None, SystemAssigned, UserAssigned or 'SystemAssigned,UserAssigned', not '%s'", id.Type)
	}
	wantUser := strings.Contains(t, "UserAssigned")
	if wantUser && len(id.UserAssignedIdentities) == 0 {
		return "", nil, fault.New(fault.BadParameter, "BadRequest", "identity.userAssignedIdentities must name an identity when identity.type is '%s'", t)
	}
	if !wantUser && len(id.UserAssignedIdentities) > 0 {
		return "", nil, fault.New(fault.BadParameter, "BadRequest", "identity.userAssignedIdentities must be empty when identity.type is '%s'", t)
	}
	ids := make([]string, 0, len(id.UserAssignedIdentities))
	for k := range id.UserAssignedIdentities {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "/subscriptions/") || !strings.Contains(lk, "/providers/microsoft.managedidentity/userassignedidentities/") || len(k) > 1024 {
			return "", nil, fault.New(fault.BadParameter, "BadRequest", "identity.userAssignedIdentities: '%s' is not the resource id of a user-assigned identity", k)
		}
		ids = append(ids, k)
	}
	if len(ids) > 64 {
		return "", nil, fault.New(fault.BadParameter, "BadRequest", "identity.userAssignedIdentities: at most 64 identities")
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		ids = nil
	}
	return t, ids, nil
}

// checkName answers checkMhsmNameAvailability: a name is available if it
// is valid and no HSM of the region, live or soft-deleted, holds it.
func (a *API) checkName(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var body wire.CheckNameAvailability
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	out := wire.NameAvailability{NameAvailable: true}
	if err := instances.ValidateName(body.Name); err != nil {
		f, _ := fault.As(err)
		out = wire.NameAvailability{Reason: "AccountNameInvalid", Message: f.Message}
	} else if in, taken, err := a.deps.Instances.Lookup(r.Context(), body.Name); err != nil {
		return err
	} else if taken && in.Deleted {
		out = wire.NameAvailability{Reason: "AlreadyExists",
			Message: fmt.Sprintf("The name '%s' is in use by a deleted managed HSM until it is recovered or purged.", body.Name)}
	} else if taken {
		out = wire.NameAvailability{Reason: "AlreadyExists", Message: fmt.Sprintf("The name '%s' is already in use.", body.Name)}
	}
	writeJSON(w, http.StatusOK, out)
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
func (a *API) tenantFor(l *live, c identity.Caller, requested string) (string, error) {
	var trusted []string
	if !c.Local && c.Issuer != "" {
		trusted = l.IssuerTenants[c.Issuer]
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
				if err := instances.ValidateTags(body.Tags); err != nil {
					return err
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
					if err := checkPublicNetworkAccess(bp.PublicNetworkAccess); err != nil {
						return err
					}
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
