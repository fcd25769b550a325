// Package instances implements the lifecycle of HSM instances in a region:
// create, read, update, soft delete, recover, purge, and automatic purge at
// the scheduled date.
//
// Each instance gets its own root key at creation. The root key is wrapped
// by the region seal; the instance's properties are sealed by the region
// barrier; the instance's own values (role assignments, keys) are sealed by
// a barrier derived from its root key ([Service.Barrier]). The package never
// sees HTTP or JSON of the API: the api package converts.
//
// The instance's local RBAC policy and settings are package
// [tresor/internal/policy]'s: it reads the instance record with
// [Service.Decode] and changes it with [Service.ApplyUpdate]. Create writes
// only the initial administrators' role assignments, in the shape package
// policy stores.
package instances

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/location"
	"tresor/internal/rbac"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

// Activation statuses (ARM's securityDomainProperties.activationStatus).
const (
	NotActivated = "NotActivated"
	Active       = "Active"
	Failed       = "Failed"
)

// bucketRoleAssignments is the instance bucket of role assignments
// (policy.BucketRoleAssignments, which Create writes the initial
// administrators' assignments to).
const bucketRoleAssignments = "roleassignments"

// Properties are an instance's sealed properties.
type Properties struct {
	Name              string            `json:"name"` // as the creator spelled it
	TenantID          string            `json:"tenantId"`
	Tags              map[string]string `json:"tags,omitempty"`
	InitialAdmins     []string          `json:"initialAdmins"`
	RetentionDays     int               `json:"retentionDays"`
	PurgeProtection   bool              `json:"purgeProtection"`
	ActivationStatus  string            `json:"activationStatus"`
	ActivationMessage string            `json:"activationMessage,omitempty"`
	SKUFamily         string            `json:"skuFamily"`
	SKUName           string            `json:"skuName"`
	NetworkACLs       map[string]any    `json:"networkAcls,omitempty"`
	PublicNetwork     string            `json:"publicNetworkAccess,omitempty"`
	// IdentityType and UserAssignedIdentities are the ARM identity the
	// creator or an update gave the HSM, kept and returned as given.
	IdentityType           string    `json:"identityType,omitempty"`
	UserAssignedIdentities []string  `json:"userAssignedIdentities,omitempty"`
	CreatedBy              string    `json:"createdBy"`
	Created                time.Time `json:"created"`
	LastModifiedBy         string    `json:"lastModifiedBy"`
	LastModified           time.Time `json:"lastModified"`
	// SDOperation is the last security-domain operation.
	SDOperation *SDOperation `json:"sdOperation,omitempty"`
	// ExchangeKey (PKCS#8) and ExchangeCert (DER) exist while the instance
	// waits for a security-domain upload (recovery mode).
	ExchangeKey  []byte `json:"exchangeKey,omitempty"`
	ExchangeCert []byte `json:"exchangeCert,omitempty"`
}

// Instance is an HSM instance as the service returns it.
type Instance struct {
	Key           string // lower-case name, the store key and DNS label
	Subscription  string
	ResourceGroup string
	Location      string
	Generation    uint64
	// Epoch counts whole-instance replaces (security-domain upload, full
	// restore); writers of values name the epoch they read, so a write
	// built before a replace never lands after it.
	Epoch uint64
	// Staging is the id of the full restore being staged ("" = none):
	// while it is set the data plane answers 503.
	Staging string
	Properties
	Deleted            bool
	DeletionDate       time.Time
	ScheduledPurgeDate time.Time

	wrappedRoot []byte
}

// roleAssignment is a role assignment as package policy stores it
// (policy.RoleAssignment, which imports this package): Create writes the
// initial administrators' assignments in this shape.
type roleAssignment struct {
	Name             string `json:"name"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	Scope            string `json:"scope"`
}

// Caller is who asks.
type Caller struct {
	ObjectID    string
	RegionAdmin bool
}

// Config configures the service.
type Config struct {
	Region   string // location name
	TenantID string
	Now      func() time.Time
	// Administrators returns the object ids (lower case) that hold the
	// Managed HSM Administrator role at scope "/" in the instance's
	// current local RBAC state (the policy service answers it): they,
	// and region administrators, have the control-plane rights. Nil
	// means the initial administrators, which is what the RBAC state
	// holds until its first change.
	Administrators func(ctx context.Context, in Instance) ([]string, error)
}

// Service manages instances. It is safe for concurrent use.
type Service struct {
	st     store.Store
	seal   barrier.Seal
	region *barrier.Barrier
	cfg    Config

	mu    sync.Mutex
	roots map[string]rootEntry  // unwrapped instance roots, by key and wrapped bytes
	props map[string]propsEntry // opened properties, by key and sealed bytes
}

type propsEntry struct {
	sealed string
	props  Properties
}

// clone returns a copy of p that shares nothing mutable with it.
func (p Properties) clone() Properties {
	p.Tags = maps(p.Tags)
	p.InitialAdmins = slices.Clone(p.InitialAdmins)
	p.UserAssignedIdentities = slices.Clone(p.UserAssignedIdentities)
	if p.NetworkACLs != nil {
		acl := make(map[string]any, len(p.NetworkACLs))
		for k, v := range p.NetworkACLs {
			acl[k] = v
		}
		p.NetworkACLs = acl
	}
	if p.SDOperation != nil {
		op := *p.SDOperation
		p.SDOperation = &op
	}
	p.ExchangeKey, p.ExchangeCert = slices.Clone(p.ExchangeKey), slices.Clone(p.ExchangeCert)
	return p
}

type rootEntry struct {
	wrapped string
	root    *barrier.RootKey
	barrier *barrier.Barrier
}

// New returns the service.
func New(st store.Store, seal barrier.Seal, region *barrier.Barrier, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{st: st, seal: seal, region: region, cfg: cfg, roots: map[string]rootEntry{}, props: map[string]propsEntry{}}
}

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)
	rgRE   = regexp.MustCompile(`^[-\w._()]{1,90}$`)
)

// ValidateName checks an HSM name as Azure does: 3–24 characters, letters,
// digits and hyphens, starting with a letter, ending with a letter or digit,
// without consecutive hyphens.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) || strings.Contains(name, "--") {
		return fault.New(fault.BadParameter, "InvalidResourceName",
			"the managed HSM name %q is invalid: it must be 3-24 characters of letters, digits and hyphens, start with a letter, end with a letter or digit, and contain no consecutive hyphens", name)
	}
	return nil
}

// ValidateTags checks an HSM's tags as ARM does: at most 50, names of
// 1-512 characters, values of at most 256.
func ValidateTags(tags map[string]string) error {
	if len(tags) > 50 {
		return fault.New(fault.BadParameter, "InvalidTagsCount", "at most 50 tags")
	}
	for k, v := range tags {
		if k == "" || len(k) > 512 || len(v) > 256 {
			return fault.New(fault.BadParameter, "InvalidTagNameLength", "tag names must be 1-512 characters and values at most 256")
		}
	}
	return nil
}

// IsUUID reports whether s is a uuid.
func IsUUID(s string) bool { return uuid.Valid(s) }

// CreateRequest asks for a new instance.
type CreateRequest struct {
	Name            string
	Subscription    string
	ResourceGroup   string
	Location        string
	TenantID        string // "" = the region's tenant
	Tags            map[string]string
	InitialAdmins   []string
	RetentionDays   int // 0 = default 90
	PurgeProtection bool
	SKUFamily       string
	SKUName         string
	NetworkACLs     map[string]any
	PublicNetwork   string
	// IdentityType and UserAssignedIdentities: see [Properties].
	IdentityType           string
	UserAssignedIdentities []string
}

// NotFound is the error (kind NotFound, code ResourceNotFound) of a request
// for the instance called name that does not exist, or is deleted where a
// live one is needed.
func NotFound(name string) error {
	return fault.New(fault.NotFound, "ResourceNotFound", "the managed HSM '%s' was not found", name)
}

func (s *Service) validateCreate(req *CreateRequest) error {
	if err := ValidateName(req.Name); err != nil {
		return err
	}
	if !rgRE.MatchString(req.ResourceGroup) || strings.HasSuffix(req.ResourceGroup, ".") {
		return fault.New(fault.BadParameter, "InvalidResourceGroup", "the resource group name %q is invalid", req.ResourceGroup)
	}
	if !location.Equal(req.Location, s.cfg.Region) {
		return fault.New(fault.BadParameter, "LocationNotAvailableForResourceType",
			"the location %q is not available: this region serves location %q", req.Location, s.cfg.Region)
	}
	req.Location = s.cfg.Region
	if req.TenantID == "" {
		req.TenantID = s.cfg.TenantID
	}
	if len(req.InitialAdmins) == 0 {
		return fault.New(fault.BadParameter, "BadRequest", "properties.initialAdminObjectIds must name at least one administrator")
	}
	seen := map[string]bool{}
	for _, a := range req.InitialAdmins {
		if !IsUUID(a) {
			return fault.New(fault.BadParameter, "BadRequest", "properties.initialAdminObjectIds: %q is not an object id (uuid)", a)
		}
		seen[strings.ToLower(a)] = true
	}
	if len(seen) > 10 {
		return fault.New(fault.BadParameter, "BadRequest", "properties.initialAdminObjectIds: at most 10 administrators")
	}
	if req.RetentionDays == 0 {
		req.RetentionDays = 90
	}
	if req.RetentionDays < 7 || req.RetentionDays > 90 {
		return fault.New(fault.BadParameter, "BadRequest", "properties.softDeleteRetentionInDays must be between 7 and 90, got %d", req.RetentionDays)
	}
	if err := ValidateTags(req.Tags); err != nil {
		return err
	}
	if req.SKUFamily == "" {
		req.SKUFamily = "B"
	}
	if req.SKUName == "" {
		req.SKUName = "Standard_B1"
	}
	return nil
}

// Create makes a new, not activated instance whose initial administrators
// hold the Managed HSM Administrator role at scope "/".
func (s *Service) Create(ctx context.Context, c Caller, req CreateRequest) (Instance, error) {
	if !c.RegionAdmin {
		return Instance{}, fault.New(fault.Forbidden, "AuthorizationFailed",
			"the client '%s' is not a region administrator and may not create managed HSMs", c.ObjectID)
	}
	if err := s.validateCreate(&req); err != nil {
		return Instance{}, err
	}
	key := strings.ToLower(req.Name)
	root, err := barrier.NewRootKey(rand.Reader)
	if err != nil {
		return Instance{}, err
	}
	wrapped, err := barrier.WrapRootKey(s.seal, root, key)
	if err != nil {
		return Instance{}, err
	}
	now := s.cfg.Now().UTC()
	admins := uniqueLower(req.InitialAdmins)
	props := Properties{
		Name: req.Name, TenantID: req.TenantID, Tags: req.Tags, InitialAdmins: admins,
		RetentionDays: req.RetentionDays, PurgeProtection: req.PurgeProtection,
		ActivationStatus: NotActivated, SKUFamily: req.SKUFamily, SKUName: req.SKUName,
		NetworkACLs: req.NetworkACLs, PublicNetwork: req.PublicNetwork,
		IdentityType: req.IdentityType, UserAssignedIdentities: req.UserAssignedIdentities,
		CreatedBy: c.ObjectID, Created: now, LastModifiedBy: c.ObjectID, LastModified: now,
	}
	sealedProps, err := s.sealProps(key, props)
	if err != nil {
		return Instance{}, err
	}
	ib, err := barrier.New(root, barrier.Storage, key)
	if err != nil {
		return Instance{}, err
	}
	var values []store.Value
	for _, a := range admins {
		ra := roleAssignment{Name: uuid.New(), PrincipalID: a, RoleDefinitionID: rbac.RoleDefinitionIDPrefix + rbac.AdministratorID, Scope: "/"}
		v, err := SealJSON(ib, bucketRoleAssignments, ra.Name, ra)
		if err != nil {
			return Instance{}, err
		}
		values = append(values, v)
	}
	rec := store.Instance{
		Name: key, Subscription: strings.ToLower(req.Subscription), ResourceGroup: req.ResourceGroup,
		Location: req.Location, Properties: sealedProps, WrappedRoot: wrapped,
	}
	err = s.st.Apply(ctx, store.CreateInstance{Instance: rec, Values: values})
	if errors.Is(err, store.ErrExists) {
		existing, gerr := s.get(ctx, key)
		if gerr == nil && existing.Deleted {
			return Instance{}, fault.New(fault.Conflict, "ConflictError",
				"a deleted managed HSM named '%s' exists and keeps the name until it is recovered or purged (scheduled purge %s)",
				req.Name, existing.ScheduledPurgeDate.Format(time.RFC3339))
		}
		return Instance{}, fault.New(fault.Conflict, "ConflictError", "the managed HSM name '%s' is already in use", req.Name)
	}
	if err != nil {
		return Instance{}, err
	}
	return s.get(ctx, key)
}

func uniqueLower(in []string) []string {
	var out []string
	for _, a := range in {
		a = strings.ToLower(a)
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// SealJSON seals v's JSON as the value key of bucket with the instance
// barrier b (the path in its additional data is bucket/key).
func SealJSON(b *barrier.Barrier, bucket, key string, v any) (store.Value, error) {
	pt, err := json.Marshal(v)
	if err != nil {
		return store.Value{}, err
	}
	ct, err := b.Seal(bucket+"/"+key, pt)
	if err != nil {
		return store.Value{}, err
	}
	return store.Value{Bucket: bucket, Key: key, Value: ct}, nil
}

func (s *Service) sealProps(key string, p Properties) ([]byte, error) {
	pt, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return s.region.Seal("instances/"+key, pt)
}

// Decode returns the instance that the store record rec holds, opening its
// properties. It lets a caller that reads the record together with other
// values of the instance, in one store.View, see them at one snapshot; the
// instance it returns carries that snapshot's wrapped root, so
// [Service.Barrier] opens that snapshot's values.
func (s *Service) Decode(rec store.Instance) (Instance, error) {
	p, err := s.openProps(rec)
	if err != nil {
		return Instance{}, err
	}
	return Instance{
		Key: rec.Name, Subscription: rec.Subscription, ResourceGroup: rec.ResourceGroup, Location: rec.Location,
		Generation: rec.Generation, Epoch: rec.Epoch, Staging: rec.Staging, Properties: p, Deleted: rec.Deleted,
		DeletionDate: rec.DeletionDate, ScheduledPurgeDate: rec.ScheduledPurgeDate,
		wrappedRoot: rec.WrappedRoot,
	}, nil
}

// openProps opens an instance's sealed properties, from the cache when the
// sealed bytes are those cached (every request of the data plane reads
// its instance).
func (s *Service) openProps(rec store.Instance) (Properties, error) {
	s.mu.Lock()
	e, ok := s.props[rec.Name]
	s.mu.Unlock()
	if ok && e.sealed == string(rec.Properties) {
		return e.props.clone(), nil
	}
	pt, err := s.region.Open("instances/"+rec.Name, rec.Properties)
	if err != nil {
		return Properties{}, fmt.Errorf("instances: open properties of %s: %w", rec.Name, err)
	}
	var p Properties
	if err := json.Unmarshal(pt, &p); err != nil {
		return Properties{}, fmt.Errorf("instances: decode properties of %s: %w", rec.Name, err)
	}
	s.mu.Lock()
	if len(s.props) > 10000 {
		clear(s.props)
	}
	s.props[rec.Name] = propsEntry{sealed: string(rec.Properties), props: p.clone()}
	s.mu.Unlock()
	return p, nil
}

func (s *Service) get(ctx context.Context, key string) (Instance, error) {
	var rec store.Instance
	err := s.st.View(ctx, func(r store.Reader) error {
		var err error
		rec, err = r.Instance(key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Instance{}, NotFound(key)
	}
	if err != nil {
		return Instance{}, err
	}
	return s.Decode(rec)
}

// Get returns an instance that is not deleted, by name (any case).
func (s *Service) Get(ctx context.Context, name string) (Instance, error) {
	in, err := s.get(ctx, strings.ToLower(name))
	if err != nil {
		return Instance{}, err
	}
	if in.Deleted {
		return Instance{}, NotFound(name)
	}
	return in, nil
}

// GetIn returns an instance that is not deleted within a subscription and
// resource group (ARM addressing; both compared without case).
func (s *Service) GetIn(ctx context.Context, sub, rg, name string) (Instance, error) {
	in, err := s.Get(ctx, name)
	if err != nil {
		return Instance{}, err
	}
	if !strings.EqualFold(in.Subscription, sub) || !strings.EqualFold(in.ResourceGroup, rg) {
		return Instance{}, NotFound(name)
	}
	return in, nil
}

// Lookup returns the instance that holds name (any case), live or
// soft-deleted, and whether one does: a name is taken until its instance
// is purged.
func (s *Service) Lookup(ctx context.Context, name string) (Instance, bool, error) {
	in, err := s.get(ctx, strings.ToLower(name))
	if f, ok := fault.As(err); ok && f.Kind == fault.NotFound {
		return Instance{}, false, nil
	}
	if err != nil {
		return Instance{}, false, err
	}
	return in, true, nil
}

// GetDeleted returns a soft-deleted instance by name.
func (s *Service) GetDeleted(ctx context.Context, sub, name string) (Instance, error) {
	in, err := s.get(ctx, strings.ToLower(name))
	if err != nil {
		return Instance{}, err
	}
	if !in.Deleted || (sub != "" && !strings.EqualFold(in.Subscription, sub)) {
		return Instance{}, fault.New(fault.NotFound, "ResourceNotFound", "no deleted managed HSM named '%s' was found", name)
	}
	return in, nil
}

// List returns instances that are not deleted, filtered by subscription and
// (if not empty) resource group, by name.
func (s *Service) List(ctx context.Context, sub, rg string) ([]Instance, error) {
	return s.list(ctx, func(in store.Instance) bool {
		return !in.Deleted && (sub == "" || strings.EqualFold(in.Subscription, sub)) &&
			(rg == "" || strings.EqualFold(in.ResourceGroup, rg))
	})
}

// ListDeleted returns the soft-deleted instances of a subscription.
func (s *Service) ListDeleted(ctx context.Context, sub string) ([]Instance, error) {
	return s.list(ctx, func(in store.Instance) bool {
		return in.Deleted && (sub == "" || strings.EqualFold(in.Subscription, sub))
	})
}

func (s *Service) list(ctx context.Context, keep func(store.Instance) bool) ([]Instance, error) {
	var recs []store.Instance
	err := s.st.View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.Instances()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []Instance{}
	for _, rec := range recs {
		if !keep(rec) {
			continue
		}
		in, err := s.Decode(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// IsAdministrator reports whether c may manage the instance through the
// control plane (update, delete, recover, purge): a region administrator,
// or a holder of the Managed HSM Administrator role at scope "/" in the
// instance's current local RBAC state ([Config.Administrators]). Until
// the first role change that is the initial administrators (creation
// assigns them the role, and an instance that is not activated takes no
// role change); after it, rights follow the assignments, so an
// administrator whose assignment is removed loses them and a principal
// granted the role gains them.
func (s *Service) IsAdministrator(ctx context.Context, c Caller, in Instance) (bool, error) {
	if c.RegionAdmin {
		return true, nil
	}
	admins := in.InitialAdmins
	if s.cfg.Administrators != nil {
		var err error
		if admins, err = s.cfg.Administrators(ctx, in); err != nil {
			return false, err
		}
	}
	return slices.ContainsFunc(admins, func(a string) bool { return strings.EqualFold(a, c.ObjectID) }), nil
}

func (s *Service) mustAdmin(ctx context.Context, c Caller, in Instance, what string) error {
	ok, err := s.IsAdministrator(ctx, c, in)
	if err != nil {
		return err
	}
	if !ok {
		return fault.New(fault.Forbidden, "AuthorizationFailed",
			"the client '%s' may not %s the managed HSM '%s': it is neither a region administrator nor an administrator of the HSM", c.ObjectID, what, in.Name)
	}
	return nil
}

// SealedRoot is the instance's root key as the seal wrapped it: it tells
// apart incarnations of a name, and changes when a security-domain upload
// replaces the root. Writers pass it to store.WriteInstanceValues.
func (i Instance) SealedRoot() []byte { return i.wrappedRoot }

// Root returns the instance's root key (unwrapped by the seal; cached).
func (s *Service) Root(in Instance) (*barrier.RootKey, error) {
	e, err := s.rootEntry(in)
	if err != nil {
		return nil, err
	}
	return e.root, nil
}

// rootEntry returns the unwrapped root of in and its barrier, from the
// cache when the wrapped root is the one cached.
func (s *Service) rootEntry(in Instance) (rootEntry, error) {
	wrapped := in.wrappedRoot
	if wrapped == nil {
		cur, err := s.get(context.Background(), in.Key)
		if err != nil {
			return rootEntry{}, err
		}
		wrapped = cur.wrappedRoot
	}
	s.mu.Lock()
	e, ok := s.roots[in.Key]
	s.mu.Unlock()
	if ok && e.wrapped == string(wrapped) {
		return e, nil
	}
	root, err := barrier.UnwrapRootKey(s.seal, wrapped, in.Key)
	if err != nil {
		return rootEntry{}, fmt.Errorf("instances: unwrap root of %s: %w", in.Key, err)
	}
	b, err := barrier.New(root, barrier.Storage, in.Key)
	if err != nil {
		return rootEntry{}, err
	}
	e = rootEntry{wrapped: string(wrapped), root: root, barrier: b}
	s.mu.Lock()
	s.roots[in.Key] = e
	s.mu.Unlock()
	return e, nil
}

// Barrier returns the barrier that seals the instance's values.
func (s *Service) Barrier(in Instance) (*barrier.Barrier, error) {
	e, err := s.rootEntry(in)
	if err != nil {
		return nil, err
	}
	return e.barrier, nil
}

// Update changes an instance's properties with fn, retrying on concurrent
// changes. Only administrators may update.
func (s *Service) Update(ctx context.Context, c Caller, sub, rg, name string, fn func(*Properties) error) (Instance, error) {
	for attempt := 0; ; attempt++ {
		in, err := s.GetIn(ctx, sub, rg, name)
		if err != nil {
			return Instance{}, err
		}
		if err := s.mustAdmin(ctx, c, in, "update"); err != nil {
			return Instance{}, err
		}
		p := in.Properties
		p.Tags = maps(in.Tags)
		if err := fn(&p); err != nil {
			return Instance{}, err
		}
		p.LastModifiedBy = c.ObjectID
		p.LastModified = s.cfg.Now().UTC()
		sealed, err := s.sealProps(in.Key, p)
		if err != nil {
			return Instance{}, err
		}
		err = s.st.Apply(ctx, store.UpdateInstance{Name: in.Key, Expect: in.Generation, Properties: sealed})
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return Instance{}, s.mapErr(err, name)
		}
		return s.get(ctx, in.Key)
	}
}

// ApplyUpdate applies an UpdateInstance built by another service (for
// example the security-domain service) with properties changed by fn.
func (s *Service) ApplyUpdate(ctx context.Context, in Instance, p Properties, cmd store.UpdateInstance) (Instance, error) {
	sealed, err := s.sealProps(in.Key, p)
	if err != nil {
		return Instance{}, err
	}
	cmd.Name, cmd.Expect, cmd.Properties = in.Key, in.Generation, sealed
	if err := s.st.Apply(ctx, cmd); err != nil {
		return Instance{}, s.mapErr(err, in.Name)
	}
	return s.get(ctx, in.Key)
}

func maps(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Restoring is the error of a request refused while the instance's whole
// state is being replaced (a full restore, or a security-domain upload
// re-sealing it): 503, to be retried once that has finished.
func Restoring(name string) error {
	return fault.New(fault.Unavailable, "ServiceUnavailable",
		"the managed HSM '%s' is being restored (a full restore or a security-domain upload is replacing its state): the data plane is unavailable until it has finished; only restore status works", name)
}

func (s *Service) mapErr(err error, name string) error {
	switch {
	case errors.Is(err, store.ErrBusy):
		return Restoring(name)
	case errors.Is(err, store.ErrNotFound):
		return NotFound(name)
	case errors.Is(err, store.ErrConflict):
		return fault.Wrap(err, fault.Conflict, "Conflict", "the managed HSM '%s' changed concurrently; try again", name)
	}
	return err
}

// Delete soft-deletes an instance; it stays listed as deleted until it is
// recovered or purged (by hand, or at its scheduled purge date).
func (s *Service) Delete(ctx context.Context, c Caller, sub, rg, name string) (Instance, error) {
	in, err := s.GetIn(ctx, sub, rg, name)
	if err != nil {
		return Instance{}, err
	}
	if err := s.mustAdmin(ctx, c, in, "delete"); err != nil {
		return Instance{}, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Second)
	err = s.st.Apply(ctx, store.DeleteInstance{
		Name: in.Key, Expect: in.Generation, DeletionDate: now,
		ScheduledPurgeDate: now.Add(time.Duration(in.RetentionDays) * 24 * time.Hour),
	})
	if err != nil {
		return Instance{}, s.mapErr(err, name)
	}
	return s.get(ctx, in.Key)
}

// Recover brings a soft-deleted instance back.
func (s *Service) Recover(ctx context.Context, c Caller, sub, name string) (Instance, error) {
	in, err := s.GetDeleted(ctx, sub, name)
	if err != nil {
		return Instance{}, err
	}
	if err := s.mustAdmin(ctx, c, in, "recover"); err != nil {
		return Instance{}, err
	}
	if err := s.st.Apply(ctx, store.RecoverInstance{Name: in.Key, Expect: in.Generation}); err != nil {
		return Instance{}, s.mapErr(err, name)
	}
	return s.get(ctx, in.Key)
}

// Purge removes a soft-deleted instance for good. It is refused while purge
// protection holds (until the scheduled purge date).
func (s *Service) Purge(ctx context.Context, c Caller, sub, name string) error {
	in, err := s.GetDeleted(ctx, sub, name)
	if err != nil {
		return err
	}
	if err := s.mustAdmin(ctx, c, in, "purge"); err != nil {
		return err
	}
	if in.PurgeProtection && s.cfg.Now().Before(in.ScheduledPurgeDate) {
		return fault.New(fault.Conflict, "PurgeProtectionEnabled",
			"the managed HSM '%s' has purge protection enabled: it cannot be purged before its scheduled purge date %s",
			in.Name, in.ScheduledPurgeDate.Format(time.RFC3339))
	}
	return s.purge(ctx, in)
}

func (s *Service) purge(ctx context.Context, in Instance) error {
	if err := s.st.Apply(ctx, store.PurgeInstance{Name: in.Key, Expect: in.Generation}); err != nil {
		return s.mapErr(err, in.Name)
	}
	s.mu.Lock()
	delete(s.roots, in.Key)
	s.mu.Unlock()
	return nil
}

// PurgeExpired purges every deleted instance whose scheduled purge date has
// passed, and returns how many it purged.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	del, err := s.ListDeleted(ctx, "")
	if err != nil {
		return 0, err
	}
	now := s.cfg.Now()
	n := 0
	for _, in := range del {
		if now.Before(in.ScheduledPurgeDate) {
			continue
		}
		if err := s.purge(ctx, in); err != nil {
			if fault.KindOf(err) == fault.Conflict || fault.KindOf(err) == fault.NotFound {
				continue // changed meanwhile
			}
			return n, err
		}
		n++
	}
	return n, nil
}
