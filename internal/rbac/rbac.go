// Package rbac implements Managed HSM local role-based access control
// (spec §5): the built-in role definitions with their real GUIDs and data
// actions, custom roles checked against the data-action vocabulary, role
// assignments at a scope, and the decision whether assignments grant a
// data action at a scope.
//
// # Scopes
//
// Scopes are "/" (the whole HSM), "/keys" (every key) and "/keys/{name}"
// (one key). An assignment covers its scope and every scope below it
// ([Covers]); [ParseScope] accepts the forms clients send.
//
// # Decisions
//
// [Allowed] grants an action if some assignment whose scope covers the
// target has a role that lists the action among its data actions and not
// among its notDataActions. As in Azure RBAC, notDataActions narrow only
// their own role; nothing denies what another role grants.
//
// # Policy
//
// A [Policy] is an HSM's custom roles and assignments. Its Check methods
// enforce the service's rules before a change is stored: unique role
// names, the limits of spec §6.1 ([MaxCustomRoles], [MaxAssignmentsHSM],
// [MaxAssignmentsPerKey]), no deletion of an assigned role, and no removal
// of the last Managed HSM Administrator assignment at "/". Errors carry a
// fault kind and an Azure-style code. The package stores nothing and never
// sees HTTP: package instances persists the policy, package api serves it.
package rbac

import (
	"slices"
	"strings"
)

// ActionPrefix precedes every Managed HSM data action.
const ActionPrefix = "Microsoft.KeyVault/managedHsm/"

// Data actions (without the prefix).
const (
	KeysRead                  = "keys/read/action"
	KeysWrite                 = "keys/write/action"
	KeysCreate                = "keys/create"
	KeysDelete                = "keys/delete"
	KeysImport                = "keys/import/action"
	KeysRotate                = "keys/rotate/action"
	KeysBackup                = "keys/backup/action"
	KeysRestore               = "keys/restore/action"
	KeysEncrypt               = "keys/encrypt/action"
	KeysDecrypt               = "keys/decrypt/action"
	KeysWrap                  = "keys/wrap/action"
	KeysUnwrap                = "keys/unwrap/action"
	KeysSign                  = "keys/sign/action"
	KeysVerify                = "keys/verify/action"
	KeysRelease               = "keys/release/action"
	KeysDerive                = "keys/derive/action"
	KeysExport                = "keys/export/action"
	DeletedKeysRead           = "keys/deletedKeys/read/action"
	DeletedKeysRecover        = "keys/deletedKeys/recover/action"
	DeletedKeysDelete         = "keys/deletedKeys/delete"
	RoleAssignmentsRead       = "roleAssignments/read/action"
	RoleAssignmentsWrite      = "roleAssignments/write/action"
	RoleAssignmentsDelete     = "roleAssignments/delete/action"
	RoleDefinitionsRead       = "roleDefinitions/read/action"
	RoleDefinitionsWrite      = "roleDefinitions/write/action"
	RoleDefinitionsDelete     = "roleDefinitions/delete/action"
	SecurityDomainDownload    = "securitydomain/download/action"
	SecurityDomainDownloadGet = "securitydomain/download/read"
	SecurityDomainUpload      = "securitydomain/upload/action"
	SecurityDomainUploadGet   = "securitydomain/upload/read"
	SecurityDomainTransferKey = "securitydomain/transferkey/read"
	BackupStart               = "backup/start/action"
	BackupStatus              = "backup/status/action"
	RestoreStart              = "restore/start/action"
	RestoreStatus             = "restore/status/action"
	RNG                       = "rng/action"
)

// Role is a role definition: built-in, or custom (made by a user of the
// HSM). Data actions are kept without [ActionPrefix].
type Role struct {
	ID             string // GUID, lower case
	Name           string // roleName
	Description    string
	DataActions    []string // without prefix
	NotDataActions []string // without prefix
	BuiltIn        bool
}

// Type is the role's type as the service names it: "AKVBuiltInRole" or
// "CustomRole".
func (r Role) Type() string {
	if r.BuiltIn {
		return TypeBuiltIn
	}
	return TypeCustom
}

// Role types (the "type" property of a role definition).
const (
	TypeBuiltIn = "AKVBuiltInRole"
	TypeCustom  = "CustomRole"
)

// Built-in role GUIDs.
const (
	AdministratorID = "a290e904-7015-4bba-90c8-60543313cdb4"
	CryptoOfficerID = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"
	CryptoUserID    = "21dbd100-6940-42c2-9190-5d6cb909625b"
	PolicyAdminID   = "4bd23610-cdcf-4971-bdee-bdc562cc28e4"
	CryptoAuditorID = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3"
	ServiceEncID    = "33413926-3206-4cdd-b39a-83574fe37a17"
	ServiceRelID    = "21dbd100-6940-42c2-9190-5d6cb909625c"
	BackupUserID    = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8"
	RestoreUserID   = "6efe6056-5259-49d2-8b3d-d3d73544b20b"
)

// BuiltIn lists the built-in roles as the service returns them (spec §5.3).
var BuiltIn = []Role{
	{ID: AdministratorID, Name: "Managed HSM Administrator", BuiltIn: true, DataActions: []string{
		RoleAssignmentsDelete, RoleAssignmentsRead, RoleAssignmentsWrite,
		RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete,
		SecurityDomainDownload, SecurityDomainDownloadGet, SecurityDomainUpload, SecurityDomainUploadGet,
		SecurityDomainTransferKey, BackupStart, RestoreStart, BackupStatus, RestoreStatus}},
	{ID: CryptoOfficerID, Name: "Managed HSM Crypto Officer", BuiltIn: true, DataActions: []string{
		RoleAssignmentsDelete, RoleAssignmentsRead, RoleAssignmentsWrite,
		RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete,
		DeletedKeysRead, DeletedKeysDelete, DeletedKeysRecover, KeysExport}},
	{ID: CryptoUserID, Name: "Managed HSM Crypto User", BuiltIn: true, DataActions: []string{
		RoleDefinitionsRead, RoleAssignmentsRead, KeysRead, KeysWrite, KeysDelete, KeysCreate,
		KeysRotate, KeysImport, KeysRelease, KeysBackup, KeysRestore, KeysEncrypt, KeysDecrypt,
		KeysWrap, KeysUnwrap, KeysSign, KeysVerify, KeysDerive, RNG}},
	{ID: PolicyAdminID, Name: "Managed HSM Policy Administrator", BuiltIn: true, DataActions: []string{
		RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete,
		RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete}},
	{ID: CryptoAuditorID, Name: "Managed HSM Crypto Auditor", BuiltIn: true, DataActions: []string{
		RoleAssignmentsRead, RoleDefinitionsRead, KeysRead, DeletedKeysRead}},
	{ID: ServiceEncID, Name: "Managed HSM Crypto Service Encryption User", BuiltIn: true, DataActions: []string{
		KeysRead, KeysWrap, KeysUnwrap}},
	{ID: ServiceRelID, Name: "Managed HSM Crypto Service Release User", BuiltIn: true, DataActions: []string{
		KeysRelease}},
	{ID: BackupUserID, Name: "Managed HSM Backup User", BuiltIn: true, DataActions: []string{
		BackupStart, BackupStatus, KeysBackup}},
	{ID: RestoreUserID, Name: "Managed HSM Restore User", BuiltIn: true, DataActions: []string{
		RestoreStart, RestoreStatus, KeysRestore}},
}

// BuiltInRole returns the built-in role with the GUID id.
func BuiltInRole(id string) (Role, bool) {
	for _, r := range BuiltIn {
		if strings.EqualFold(r.ID, id) {
			return r, true
		}
	}
	return Role{}, false
}

// Grant is one assignment as the decision sees it: a role at a scope.
type Grant struct {
	Role  Role
	Scope string
}

// Covers reports whether an assignment at scope applies to target: "/"
// covers everything, "/keys" every key, "/keys/k1" only k1. Key names are
// compared without ASCII case, as Key Vault does (they are ASCII letters,
// digits and hyphens): no Unicode folding, so the Kelvin sign is not a k.
func Covers(scope, target string) bool {
	if scope == "/" {
		return true
	}
	return asciiEqualFold(target, scope) ||
		len(target) > len(scope) && target[len(scope)] == '/' && asciiEqualFold(target[:len(scope)], scope)
}

// asciiEqualFold reports whether a and b are equal after lower-casing
// their ASCII letters (and nothing else).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Allowed reports whether grants allow action (without prefix) at target:
// some grant whose scope covers target has a role that lists action among
// its data actions and not among its notDataActions. As in Azure RBAC,
// notDataActions only narrow the role that carries them: they deny
// nothing another role grants.
func Allowed(grants []Grant, action, target string) bool {
	for _, g := range grants {
		if Covers(g.Scope, target) && g.Role.Permits(action) {
			return true
		}
	}
	return false
}

// Permits reports whether the role's data actions, minus its
// notDataActions, include action (without prefix).
func (r Role) Permits(action string) bool {
	return slices.ContainsFunc(r.DataActions, func(a string) bool { return sameAction(a, action) }) &&
		!slices.ContainsFunc(r.NotDataActions, func(a string) bool { return sameAction(a, action) })
}

// sameAction compares two data actions, each with or without prefix,
// without case.
func sameAction(a, b string) bool {
	return strings.EqualFold(trimPrefix(a), trimPrefix(b))
}

func trimPrefix(a string) string {
	if len(a) >= len(ActionPrefix) && strings.EqualFold(a[:len(ActionPrefix)], ActionPrefix) {
		return a[len(ActionPrefix):]
	}
	return a
}

// Vocabulary lists every Managed HSM data action (without prefix) that a
// role may name (spec §5.3; the service's DataAction enumeration). Roles
// name data actions exactly: the service knows no wildcards.
var Vocabulary = []string{
	KeysRead, KeysWrite, KeysCreate, KeysDelete, KeysImport, KeysRotate, KeysBackup, KeysRestore,
	KeysEncrypt, KeysDecrypt, KeysWrap, KeysUnwrap, KeysSign, KeysVerify, KeysRelease, KeysDerive, KeysExport,
	DeletedKeysRead, DeletedKeysRecover, DeletedKeysDelete,
	RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete,
	RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete,
	SecurityDomainDownload, SecurityDomainDownloadGet, SecurityDomainUpload, SecurityDomainUploadGet, SecurityDomainTransferKey,
	BackupStart, BackupStatus, RestoreStart, RestoreStatus, RNG,
}

// CanonicalAction returns the vocabulary entry (without prefix) that a
// names: a must carry [ActionPrefix] and name a data action of
// [Vocabulary] exactly; case does not matter.
func CanonicalAction(a string) (string, bool) {
	t := trimPrefix(strings.TrimSpace(a))
	if len(t) == len(strings.TrimSpace(a)) {
		return "", false // no prefix
	}
	for _, v := range Vocabulary {
		if strings.EqualFold(v, t) {
			return v, true
		}
	}
	return "", false
}
