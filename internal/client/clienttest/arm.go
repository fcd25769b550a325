package clienttest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"tresor/internal/wire"
)

// call is what serve hands the routes in the request context.
type call struct {
	body []byte
	tok  tokenInfo
}

type callKey struct{}

func callOf(req *http.Request) call { return req.Context().Value(callKey{}).(call) }

// route serves an authenticated request to the region endpoint.
func (r *Region) route(w http.ResponseWriter, req *http.Request, body []byte, tok tokenInfo) {
	ctx := context.WithValue(req.Context(), callKey{}, call{body: body, tok: tok})
	r.routes.ServeHTTP(w, req.WithContext(ctx))
}

const (
	hsmsPath    = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/managedHSMs"
	deletedPath = "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedManagedHSMs/{name}"
)

func (r *Region) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /tresor/account", r.account)
	m.HandleFunc("GET /tresor/principals", r.listPrincipals)
	m.HandleFunc("POST /tresor/principals", r.createPrincipal)
	m.HandleFunc("DELETE /tresor/principals/{oid}", r.deletePrincipal)
	m.HandleFunc("GET /tresor/operations/{id}", r.operation)
	m.HandleFunc("GET /subscriptions", r.subscriptions)
	m.HandleFunc("GET /subscriptions/{sub}/locations", r.locations)
	m.HandleFunc("PUT "+hsmsPath+"/{name}", r.putHSM)
	m.HandleFunc("GET "+hsmsPath+"/{name}", r.getHSM)
	m.HandleFunc("PATCH "+hsmsPath+"/{name}", r.patchHSM)
	m.HandleFunc("DELETE "+hsmsPath+"/{name}", r.deleteHSM)
	m.HandleFunc("GET "+hsmsPath, r.listHSMs)
	m.HandleFunc("GET /subscriptions/{sub}/providers/Microsoft.KeyVault/managedHSMs", r.listHSMs)
	m.HandleFunc("GET /subscriptions/{sub}/providers/Microsoft.KeyVault/deletedManagedHSMs", r.listDeleted)
	m.HandleFunc("GET "+deletedPath, r.getDeleted)
	m.HandleFunc("POST "+deletedPath+"/purge", r.purge)
	return m
}

func (r *Region) account(w http.ResponseWriter, req *http.Request) {
	c := callOf(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	a := wire.Account{
		ObjectID:            c.tok.oid,
		TenantID:            r.Info.TenantID,
		Issuer:              r.URL + "/" + r.Info.TenantID + "/v2.0",
		Region:              r.Info.Region,
		DefaultSubscription: r.Info.SubscriptionID,
	}
	for _, p := range r.principals {
		if p.ObjectID == c.tok.oid {
			a.ClientID, a.DisplayName, a.RegionAdmin = p.ClientID, p.DisplayName, p.RegionAdmin
		}
	}
	writeJSON(w, http.StatusOK, a)
}

func (r *Region) listPrincipals(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := wire.PrincipalList{Value: []wire.Principal{}}
	for _, p := range r.principals {
		out.Value = append(out.Value, p.Principal)
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Region) createPrincipal(w http.ResponseWriter, req *http.Request) {
	var in wire.PrincipalCreate
	if err := json.Unmarshal(callOf(req).body, &in); err != nil || in.DisplayName == "" {
		writeError(w, http.StatusBadRequest, "BadParameter", "displayName is required")
		return
	}
	r.mu.Lock()
	p := r.addPrincipalLocked(in.DisplayName, in.RegionAdmin)
	r.mu.Unlock()
	writeJSON(w, http.StatusCreated, p)
}

func (r *Region) deletePrincipal(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range r.principals {
		if p.ObjectID == req.PathValue("oid") {
			delete(r.principals, id)
			writeJSON(w, http.StatusOK, p.Principal)
			return
		}
	}
	writeError(w, http.StatusNotFound, "PrincipalNotFound", "Principal "+req.PathValue("oid")+" not found")
}

func (r *Region) subscriptions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, wire.SubscriptionList{Value: []wire.Subscription{{
		ID:             "/subscriptions/" + r.Info.SubscriptionID,
		SubscriptionID: r.Info.SubscriptionID,
		TenantID:       r.Info.TenantID,
		DisplayName:    "Tresor " + r.Info.Region,
		State:          "Enabled",
	}}})
}

func (r *Region) locations(w http.ResponseWriter, req *http.Request) {
	sub := req.PathValue("sub")
	writeJSON(w, http.StatusOK, wire.LocationList{Value: []wire.Location{{
		ID:             "/subscriptions/" + sub + "/locations/" + r.Info.Region,
		Name:           r.Info.Region,
		DisplayName:    r.Info.Region,
		RegionalName:   r.Info.Region,
		Type:           "Region",
		SubscriptionID: sub,
	}}})
}

// startOp registers an operation that finishes after AsyncPolls polls and
// sets its status URL on w.
func (r *Region) startOp(w http.ResponseWriter, done func()) {
	id := uuid()
	r.ops[id] = &operation{remaining: r.AsyncPolls, done: done}
	w.Header().Set("Azure-AsyncOperation", r.URL+"/tresor/operations/"+id)
	w.Header().Set("Retry-After", "0")
}

func (r *Region) operation(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := req.PathValue("id")
	op, ok := r.ops[id]
	if !ok {
		writeError(w, http.StatusNotFound, "OperationNotFound", "operation "+id+" not found")
		return
	}
	st := wire.OperationStatus{ID: req.URL.Path, Name: id, Status: "InProgress"}
	if op.remaining > 0 {
		op.remaining--
	} else {
		if op.done != nil {
			op.done()
			op.done = nil
		}
		st.Status = "Succeeded"
	}
	writeJSON(w, http.StatusOK, st)
}

func (r *Region) hsmID(req *http.Request) string {
	return "/subscriptions/" + req.PathValue("sub") + "/resourceGroups/" + req.PathValue("rg") +
		"/providers/Microsoft.KeyVault/managedHSMs/" + req.PathValue("name")
}

func (r *Region) putHSM(w http.ResponseWriter, req *http.Request) {
	var in wire.ManagedHSM
	if err := json.Unmarshal(callOf(req).body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	name := req.PathValue("name")
	key := strings.ToLower(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if in.Properties.CreateMode == "recover" {
		d, ok := r.deleted[key]
		if !ok || !strings.EqualFold(d.Properties.MhsmID, r.hsmID(req)) {
			writeError(w, http.StatusNotFound, "ResourceNotFound", "No deleted managed HSM '"+name+"' to recover.")
			return
		}
		delete(r.deleted, key)
		h := r.newHSM(req, wire.ManagedHSM{Location: d.Properties.Location, Tags: d.Properties.Tags,
			Properties: wire.ManagedHSMProps{EnablePurgeProtection: &d.Properties.PurgeProtectionEnabled}})
		r.hsms[key] = h
		r.startOp(w, func() { h.Properties.ProvisioningState = "Succeeded" })
		writeJSON(w, http.StatusOK, h)
		return
	}
	if _, ok := r.deleted[key]; ok {
		writeError(w, http.StatusConflict, "Conflict", "The name '"+name+"' is in use by a deleted managed HSM; recover or purge it first.")
		return
	}
	if _, ok := r.hsms[key]; ok {
		writeError(w, http.StatusConflict, "Conflict", "A managed HSM named '"+name+"' already exists.")
		return
	}
	if in.Location == "" || len(in.Properties.InitialAdminObjectIDs) == 0 {
		writeError(w, http.StatusBadRequest, "BadRequest", "location and properties.initialAdminObjectIds are required")
		return
	}
	if in.Properties.TenantID != r.Info.TenantID {
		writeError(w, http.StatusBadRequest, "BadRequest", "properties.tenantId must be the region's tenant")
		return
	}
	h := r.newHSM(req, in)
	r.hsms[key] = h
	r.startOp(w, func() { h.Properties.ProvisioningState = "Succeeded" })
	writeJSON(w, http.StatusAccepted, h)
}

// newHSM builds the stored resource from a request body.
func (r *Region) newHSM(req *http.Request, in wire.ManagedHSM) *wire.ManagedHSM {
	t, f, days := true, false, 90
	p := in.Properties
	if p.SoftDeleteRetentionInDays == nil {
		p.SoftDeleteRetentionInDays = &days
	}
	if p.EnablePurgeProtection == nil {
		p.EnablePurgeProtection = &f
	}
	p.EnableSoftDelete = &t
	p.TenantID = r.Info.TenantID
	p.CreateMode = ""
	p.ProvisioningState = "Provisioning"
	p.PublicNetworkAccess = "Enabled"
	p.SecurityDomainProperties = &wire.SecurityDomainProperties{ActivationStatus: "NotActivated", ActivationStatusMessage: "Your HSM has been provisioned, but cannot be used for cryptographic operations until it is activated."}
	p.HsmURI = "https://" + strings.ToLower(req.PathValue("name")) + "." + strings.TrimPrefix(r.Info.HSMResource, "https://") + "/"
	sku := in.SKU
	if sku == nil {
		sku = &wire.SKU{Family: "B", Name: "Standard_B1"}
	}
	return &wire.ManagedHSM{
		ID:         r.hsmID(req),
		Name:       req.PathValue("name"),
		Type:       "Microsoft.KeyVault/managedHSMs",
		Location:   in.Location,
		SKU:        sku,
		Tags:       in.Tags,
		Properties: p,
	}
}

// lookup returns the live HSM the request names, answering 404 if none.
func (r *Region) lookup(w http.ResponseWriter, req *http.Request) *wire.ManagedHSM {
	h, ok := r.hsms[strings.ToLower(req.PathValue("name"))]
	if !ok || !strings.EqualFold(h.ID, r.hsmID(req)) {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The Resource 'Microsoft.KeyVault/managedHSMs/"+req.PathValue("name")+"' under resource group '"+req.PathValue("rg")+"' was not found.")
		return nil
	}
	return h
}

func (r *Region) getHSM(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.lookup(w, req); h != nil {
		writeJSON(w, http.StatusOK, h)
	}
}

func (r *Region) patchHSM(w http.ResponseWriter, req *http.Request) {
	var raw map[string]json.RawMessage
	var in wire.ManagedHSMPatch
	body := callOf(req).body
	if json.Unmarshal(body, &raw) != nil || json.Unmarshal(body, &in) != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "invalid JSON")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.lookup(w, req)
	if h == nil {
		return
	}
	if _, ok := raw["tags"]; ok {
		h.Tags = in.Tags
	}
	if in.Properties != nil && in.Properties.EnablePurgeProtection != nil {
		if !*in.Properties.EnablePurgeProtection && *h.Properties.EnablePurgeProtection {
			writeError(w, http.StatusBadRequest, "BadRequest", "Purge protection cannot be disabled once enabled.")
			return
		}
		v := *in.Properties.EnablePurgeProtection
		h.Properties.EnablePurgeProtection = &v
	}
	writeJSON(w, http.StatusOK, h)
}

func (r *Region) deleteHSM(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.lookup(w, req)
	if h == nil {
		return
	}
	key := strings.ToLower(h.Name)
	delete(r.hsms, key)
	now := time.Now().UTC().Truncate(time.Second)
	r.deleted[key] = &wire.DeletedManagedHSM{
		ID:   "/subscriptions/" + req.PathValue("sub") + "/providers/Microsoft.KeyVault/locations/" + h.Location + "/deletedManagedHSMs/" + h.Name,
		Name: h.Name,
		Type: "Microsoft.KeyVault/deletedManagedHSMs",
		Properties: wire.DeletedManagedHSMProps{
			MhsmID:                 h.ID,
			Location:               h.Location,
			DeletionDate:           now,
			ScheduledPurgeDate:     now.AddDate(0, 0, *h.Properties.SoftDeleteRetentionInDays),
			PurgeProtectionEnabled: *h.Properties.EnablePurgeProtection,
			Tags:                   h.Tags,
		},
	}
	w.WriteHeader(http.StatusOK)
}

func (r *Region) listHSMs(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []wire.ManagedHSM
	for _, h := range r.hsms {
		if rg := req.PathValue("rg"); rg == "" || strings.Contains(strings.ToLower(h.ID), "/resourcegroups/"+strings.ToLower(rg)+"/") {
			all = append(all, *h)
		}
	}
	slices.SortFunc(all, func(a, b wire.ManagedHSM) int { return strings.Compare(a.Name, b.Name) })
	page, next := paginate(req, r.URL, r.PageSize, all)
	writeJSON(w, http.StatusOK, wire.ManagedHSMList{Value: page, NextLink: next})
}

func (r *Region) listDeleted(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []wire.DeletedManagedHSM
	for _, d := range r.deleted {
		all = append(all, *d)
	}
	slices.SortFunc(all, func(a, b wire.DeletedManagedHSM) int { return strings.Compare(a.Name, b.Name) })
	page, next := paginate(req, r.URL, r.PageSize, all)
	writeJSON(w, http.StatusOK, wire.DeletedManagedHSMList{Value: page, NextLink: next})
}

func (r *Region) getDeleted(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.deleted[strings.ToLower(req.PathValue("name"))]
	if !ok || d.Properties.Location != req.PathValue("loc") {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "Deleted managed HSM '"+req.PathValue("name")+"' was not found.")
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (r *Region) purge(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(req.PathValue("name"))
	d, ok := r.deleted[key]
	if !ok || d.Properties.Location != req.PathValue("loc") {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "Deleted managed HSM '"+req.PathValue("name")+"' was not found.")
		return
	}
	if d.Properties.PurgeProtectionEnabled {
		writeError(w, http.StatusConflict, "Conflict", "Purge protection is enabled for managed HSM '"+d.Name+"'; it can't be purged before "+d.Properties.ScheduledPurgeDate.Format(time.RFC3339)+".")
		return
	}
	r.startOp(w, func() { delete(r.deleted, key) })
	w.WriteHeader(http.StatusAccepted)
}

// paginate cuts all by PageSize at the request's $skiptoken.
func paginate[T any](req *http.Request, base string, pageSize int, all []T) ([]T, string) {
	if all == nil {
		all = []T{}
	}
	if pageSize <= 0 {
		return all, ""
	}
	skip, _ := strconv.Atoi(req.URL.Query().Get("$skiptoken"))
	if skip > len(all) {
		skip = len(all)
	}
	end := min(skip+pageSize, len(all))
	next := ""
	if end < len(all) {
		q := req.URL.Query()
		q.Set("$skiptoken", strconv.Itoa(end))
		next = base + req.URL.Path + "?" + q.Encode()
	}
	return all[skip:end], next
}
