package api

import (
	"net/http"

	"tresor/internal/keys"
	"tresor/internal/rbac"
)

// armHSM is the ARM path prefix of one managed HSM.
const armHSM = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/managedHSMs"

// routes is the route table: every route the region serves, with its plane,
// authentication, data action and body limit. A data-plane route without a
// data action does not register (deny by default).
func (a *API) routes() []route {
	const small = 64 << 10
	keyScope := func(r *http.Request) string { return "/keys/" + r.PathValue("name") }
	keysScope := func(*http.Request) string { return "/keys" }
	return []route{
		// Liveness, for load balancers and orchestrators.
		{method: "GET", pattern: "/healthz", insecureNoAuth: true, h: a.healthz},

		// Identity (Entra ID's shape). These must work without a token.
		{method: "GET", pattern: "/tresor/region", insecureNoAuth: true, h: a.regionInfo},
		{method: "POST", pattern: "/{tenant}/oauth2/v2.0/token", insecureNoAuth: true, limit: small, h: a.token},
		{method: "POST", pattern: "/{tenant}/oauth2/token", insecureNoAuth: true, limit: small, h: a.token},
		{method: "GET", pattern: "/{tenant}/v2.0/.well-known/openid-configuration", insecureNoAuth: true, h: a.openIDConfiguration},
		{method: "GET", pattern: "/{tenant}/discovery/v2.0/keys", insecureNoAuth: true, h: a.jwks},

		// Tresor's own region API.
		{method: "GET", pattern: "/tresor/account", h: a.account},
		{method: "GET", pattern: "/tresor/principals", h: a.listPrincipals},
		{method: "POST", pattern: "/tresor/principals", limit: small, h: a.createPrincipal},
		{method: "DELETE", pattern: "/tresor/principals/{oid}", h: a.deletePrincipal},

		// Control plane in ARM's shape.
		{method: "GET", pattern: "/subscriptions", armVersion: true, h: a.listSubscriptions},
		{method: "GET", pattern: "/subscriptions/{sub}", armVersion: true, h: a.getSubscription},
		{method: "GET", pattern: "/subscriptions/{sub}/locations", armVersion: true, h: a.listLocations},
		{method: "PUT", pattern: armHSM + "/{name}", armVersion: true, limit: small, h: a.putHSM},
		{method: "GET", pattern: armHSM + "/{name}", armVersion: true, h: a.getHSM},
		{method: "PATCH", pattern: armHSM + "/{name}", armVersion: true, limit: small, h: a.patchHSM},
		{method: "DELETE", pattern: armHSM + "/{name}", armVersion: true, h: a.deleteHSM},
		{method: "GET", pattern: armHSM, armVersion: true, h: a.listHSMs},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/managedHSMs", armVersion: true, h: a.listHSMs},
		{method: "POST", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/checkMhsmNameAvailability", armVersion: true, limit: small, h: a.checkName},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedManagedHSMs", armVersion: true, h: a.listDeletedHSMs},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedManagedHSMs/{name}", armVersion: true, h: a.getDeletedHSM},
		{method: "POST", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedManagedHSMs/{name}/purge", armVersion: true, h: a.purgeHSM},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/operationResults/{op}", h: a.operationResult},

		// Security domain (spec §2.2).
		{plane: hsmPlane, method: "POST", pattern: "/securitydomain/download", action: rbac.SecurityDomainDownload, limit: small, h: a.sdDownload},
		{plane: hsmPlane, method: "GET", pattern: "/securitydomain/download/pending", action: rbac.SecurityDomainDownloadGet, versionOptional: true, h: a.sdPending},
		{plane: hsmPlane, method: "GET", pattern: "/securitydomain/upload", action: rbac.SecurityDomainTransferKey, h: a.sdTransferKey},
		{plane: hsmPlane, method: "POST", pattern: "/securitydomain/upload", action: rbac.SecurityDomainUpload, limit: 1 << 20, h: a.sdUpload},
		{plane: hsmPlane, method: "GET", pattern: "/securitydomain/upload/pending", action: rbac.SecurityDomainUploadGet, versionOptional: true, h: a.sdPending},

		// RBAC and settings (spec §5). RBAC paths reach these patterns
		// rewritten by rbacRequest, their scope in the context; changes
		// need an activated HSM, reads do not. Settings have no data
		// action of their own: see settings.go.
		{plane: hsmPlane, method: "GET", pattern: rbacDefinitions, action: rbac.RoleDefinitionsRead, scope: rbacScope, h: a.listRoleDefinitions},
		{plane: hsmPlane, method: "GET", pattern: rbacDefinitions + "/{name}", action: rbac.RoleDefinitionsRead, scope: rbacScope, h: a.getRoleDefinition},
		{plane: hsmPlane, method: "PUT", pattern: rbacDefinitions + "/{name}", action: rbac.RoleDefinitionsWrite, scope: rbacScope, needsActive: true, limit: small, h: a.putRoleDefinition},
		{plane: hsmPlane, method: "DELETE", pattern: rbacDefinitions + "/{name}", action: rbac.RoleDefinitionsDelete, scope: rbacScope, needsActive: true, h: a.deleteRoleDefinition},
		{plane: hsmPlane, method: "GET", pattern: rbacAssignments, action: rbac.RoleAssignmentsRead, scope: rbacScope, h: a.listRoleAssignments},
		{plane: hsmPlane, method: "GET", pattern: rbacAssignments + "/{name}", action: rbac.RoleAssignmentsRead, scope: rbacScope, h: a.getRoleAssignment},
		{plane: hsmPlane, method: "PUT", pattern: rbacAssignments + "/{name}", action: rbac.RoleAssignmentsWrite, scope: rbacScope, needsActive: true, limit: small, h: a.putRoleAssignment},
		{plane: hsmPlane, method: "DELETE", pattern: rbacAssignments + "/{name}", action: rbac.RoleAssignmentsDelete, scope: rbacScope, needsActive: true, h: a.deleteRoleAssignment},
		{plane: hsmPlane, method: "GET", pattern: "/settings", action: rbac.RoleDefinitionsRead, h: a.listSettings},
		{plane: hsmPlane, method: "GET", pattern: "/settings/{name}", action: rbac.RoleDefinitionsRead, h: a.getSetting},
		{plane: hsmPlane, method: "PATCH", pattern: "/settings/{name}", action: rbac.RoleDefinitionsWrite, needsActive: true, limit: small, h: a.updateSetting},

		// Keys (spec §4.1). Every key route needs an activated HSM; an
		// empty version segment means the current version (spec §9.13).
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/create", action: rbac.KeysCreate, scope: keyScope, needsActive: true, limit: small, h: a.createKey},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}", action: rbac.KeysImport, scope: keyScope, needsActive: true, limit: small, h: a.importKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys", action: rbac.KeysRead, scope: keysScope, needsActive: true, h: a.listKeys},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/{$}", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/{version}", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/versions", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.listKeyVersions},
		{plane: hsmPlane, method: "PATCH", pattern: "/keys/{name}", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.updateKey},
		{plane: hsmPlane, method: "PATCH", pattern: "/keys/{name}/{$}", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.updateKey},
		{plane: hsmPlane, method: "PATCH", pattern: "/keys/{name}/{version}", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.updateKey},
		{plane: hsmPlane, method: "DELETE", pattern: "/keys/{name}", action: rbac.KeysDelete, scope: keyScope, needsActive: true, h: a.deleteKey},
		{plane: hsmPlane, method: "GET", pattern: "/deletedkeys", action: rbac.DeletedKeysRead, scope: keysScope, needsActive: true, h: a.listDeletedKeys},
		{plane: hsmPlane, method: "GET", pattern: "/deletedkeys/{name}", action: rbac.DeletedKeysRead, scope: keyScope, needsActive: true, h: a.getDeletedKey},
		{plane: hsmPlane, method: "POST", pattern: "/deletedkeys/{name}/recover", action: rbac.DeletedKeysRecover, scope: keyScope, needsActive: true, h: a.recoverKey},
		{plane: hsmPlane, method: "DELETE", pattern: "/deletedkeys/{name}", action: rbac.DeletedKeysDelete, scope: keyScope, needsActive: true, h: a.purgeKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/backup", action: rbac.KeysBackup, scope: keyScope, needsActive: true, h: a.backupKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/restore", action: rbac.KeysRestore, scope: keysScope, needsActive: true, limit: 4 << 20, h: a.restoreKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/rotate", action: rbac.KeysRotate, scope: keyScope, needsActive: true, h: a.rotateKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/rotationpolicy", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getRotationPolicy},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}/rotationpolicy", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.putRotationPolicy},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/encrypt", action: rbac.KeysEncrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpEncrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/encrypt", action: rbac.KeysEncrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpEncrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/decrypt", action: rbac.KeysDecrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpDecrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/decrypt", action: rbac.KeysDecrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpDecrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/wrapkey", action: rbac.KeysWrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpWrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/wrapkey", action: rbac.KeysWrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpWrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/unwrapkey", action: rbac.KeysUnwrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpUnwrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/unwrapkey", action: rbac.KeysUnwrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpUnwrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/sign", action: rbac.KeysSign, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.signKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/sign", action: rbac.KeysSign, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.signKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/verify", action: rbac.KeysVerify, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.verifyKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/verify", action: rbac.KeysVerify, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.verifyKey},
		{plane: hsmPlane, method: "POST", pattern: "/rng", action: rbac.RNG, limit: 4 << 10, h: a.rng},

		// Full backup, full restore, selective key restore (spec §3); the
		// status routes work without an api-version, and restore status
		// also while a restore runs (every other route answers 503 then).
		{plane: hsmPlane, method: "POST", pattern: "/backup", action: rbac.BackupStart, needsActive: true, limit: small, h: a.startBackup},
		{plane: hsmPlane, method: "POST", pattern: "/prebackup", action: rbac.BackupStart, needsActive: true, limit: small, h: a.preBackup},
		{plane: hsmPlane, method: "GET", pattern: "/backup/{job}/pending", action: rbac.BackupStatus, versionOptional: true, h: a.backupStatus},
		{plane: hsmPlane, method: "PUT", pattern: "/restore", action: rbac.RestoreStart, needsActive: true, limit: small, h: a.startRestore},
		{plane: hsmPlane, method: "PUT", pattern: "/prerestore", action: rbac.RestoreStart, needsActive: true, limit: small, h: a.preRestore},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}/restore", action: rbac.RestoreStart, needsActive: true, limit: small, h: a.startKeyRestore},
		{plane: hsmPlane, method: "GET", pattern: "/restore/{job}/pending", action: rbac.RestoreStatus, versionOptional: true, duringRestore: true, h: a.restoreStatus},

		// Scheduled backups, Tresor's extension: changing the policy needs
		// what starting a backup needs, reading it the backup status action.
		{plane: hsmPlane, method: "PUT", pattern: "/backup/policy", action: rbac.BackupStart, needsActive: true, limit: small, h: a.putBackupPolicy},
		{plane: hsmPlane, method: "GET", pattern: "/backup/policy", action: rbac.BackupStatus, needsActive: true, h: a.getBackupPolicy},
		{plane: hsmPlane, method: "DELETE", pattern: "/backup/policy", action: rbac.BackupStart, needsActive: true, h: a.deleteBackupPolicy},
	}
}
