// Package rbac implements Managed HSM local role-based access control: the
// built-in role definitions with their real GUIDs and data actions, and the
// decision whether a set of role assignments grants a data action at a scope.
//
// Scopes are "/" (the whole HSM), "/keys" (every key) and "/keys/{name}"
// (one key). An assignment covers its scope and every scope below it.
package rbac

import "strings"

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

// Role is a role definition.
type Role struct {
	ID             string // GUID
	Name           string
	DataActions    []string // without prefix
	NotDataActions []string
	BuiltIn        bool
}

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

// Covers reports whether an assignment at scope applies to target.
func Covers(scope, target string) bool {
	if scope == "/" {
		return true
	}
	return target == scope || strings.HasPrefix(target, scope+"/")
}

// Allowed reports whether grants allow action at target: the union of the
// data actions of the grants whose scope covers target, minus their
// notDataActions.
func Allowed(grants []Grant, action, target string) bool {
	allowed := false
	for _, g := range grants {
		if !Covers(g.Scope, target) {
			continue
		}
		for _, a := range g.Role.NotDataActions {
			if matches(a, action) {
				return false
			}
		}
		for _, a := range g.Role.DataActions {
			if matches(a, action) {
				allowed = true
			}
		}
	}
	return allowed
}

// matches compares a role's action (with or without prefix, "*" wildcard
// at the end) with a requested action (without prefix).
func matches(pattern, action string) bool {
	pattern = strings.TrimPrefix(pattern, ActionPrefix)
	if strings.HasSuffix(pattern, "*") {
		return strings.HasPrefix(action, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == action
}
