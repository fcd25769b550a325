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

		// Identity (Entra ID's shape). These must work without a token;
		// token requests are audited (a failed sign-in names its client id).
		{method: "GET", pattern: "/tresor/region", insecureNoAuth: true, h: a.regionInfo},
		{method: "POST", pattern: "/{tenant}/oauth2/v2.0/token", insecureNoAuth: true, auditNoAuth: true, op: "TokenIssue", limit: small, h: a.token},
		{method: "POST", pattern: "/{tenant}/oauth2/token", insecureNoAuth: true, auditNoAuth: true, op: "TokenIssue", limit: small, h: a.token},
		{method: "GET", pattern: "/{tenant}/v2.0/.well-known/openid-configuration", insecureNoAuth: true, h: a.openIDConfiguration},
		{method: "GET", pattern: "/{tenant}/discovery/v2.0/keys", insecureNoAuth: true, h: a.jwks},

		// Tresor's own region API.
		{method: "GET", pattern: "/tresor/account", op: "AccountGet", h: a.account},
		{method: "GET", pattern: "/tresor/cluster", op: "ClusterGet", h: a.clusterStatus},
		{method: "POST", pattern: "/tresor/cluster/join-tokens", op: "ClusterJoinTokenCreate", limit: small, h: a.clusterJoinToken},
		{method: "POST", pattern: "/tresor/cluster/join", insecureNoAuth: true, auditNoAuth: true, op: "ClusterJoin", limit: small, h: a.clusterJoin},
		{method: "DELETE", pattern: "/tresor/cluster/members/{id}", op: "ClusterMemberDelete", h: a.clusterRemove},
		{method: "POST", pattern: "/tresor/cluster/transfer-leadership", op: "ClusterTransferLeadership", limit: small, h: a.clusterTransfer},
		{method: "GET", pattern: "/tresor/principals", op: "PrincipalList", h: a.listPrincipals},
		{method: "POST", pattern: "/tresor/principals", op: "PrincipalCreate", limit: small, h: a.createPrincipal},
		{method: "DELETE", pattern: "/tresor/principals/{oid}", op: "PrincipalDelete", h: a.deletePrincipal},

		// Control plane in ARM's shape.
		{method: "GET", pattern: "/subscriptions", op: "SubscriptionList", armVersion: true, h: a.listSubscriptions},
		{method: "GET", pattern: "/subscriptions/{sub}", op: "SubscriptionGet", armVersion: true, h: a.getSubscription},
		{method: "GET", pattern: "/subscriptions/{sub}/locations", op: "LocationList", armVersion: true, h: a.listLocations},
		{method: "PUT", pattern: armHSM + "/{name}", op: "HsmCreateOrUpdate", armVersion: true, limit: small, h: a.putHSM},
		{method: "GET", pattern: armHSM + "/{name}", op: "HsmGet", armVersion: true, h: a.getHSM},
		{method: "PATCH", pattern: armHSM + "/{name}", op: "HsmUpdate", armVersion: true, limit: small, h: a.patchHSM},
		{method: "DELETE", pattern: armHSM + "/{name}", op: "HsmDelete", armVersion: true, h: a.deleteHSM},
		{method: "GET", pattern: armHSM, op: "HsmList", armVersion: true, h: a.listHSMs},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/managedHSMs", op: "HsmList", armVersion: true, h: a.listHSMs},
		{method: "POST", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/checkMhsmNameAvailability", op: "HsmCheckNameAvailability", armVersion: true, limit: small, h: a.checkName},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedManagedHSMs", op: "DeletedHsmList", armVersion: true, h: a.listDeletedHSMs},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedManagedHSMs/{name}", op: "DeletedHsmGet", armVersion: true, h: a.getDeletedHSM},
		{method: "POST", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedManagedHSMs/{name}/purge", op: "DeletedHsmPurge", armVersion: true, h: a.purgeHSM},
		{method: "GET", pattern: "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/operationResults/{op}", op: "OperationResultGet", h: a.operationResult},

		// Security domain (spec §2.2).
		{plane: hsmPlane, method: "POST", pattern: "/securitydomain/download", op: "SecurityDomainDownload", action: rbac.SecurityDomainDownload, limit: small, h: a.sdDownload},
		{plane: hsmPlane, method: "GET", pattern: "/securitydomain/download/pending", op: "SecurityDomainDownloadStatus", action: rbac.SecurityDomainDownloadGet, versionOptional: true, h: a.sdPending},
		{plane: hsmPlane, method: "GET", pattern: "/securitydomain/upload", op: "SecurityDomainTransferKey", action: rbac.SecurityDomainTransferKey, h: a.sdTransferKey},
		{plane: hsmPlane, method: "POST", pattern: "/securitydomain/upload", op: "SecurityDomainUpload", action: rbac.SecurityDomainUpload, limit: 1 << 20, h: a.sdUpload},
		{plane: hsmPlane, method: "GET", pattern: "/securitydomain/upload/pending", op: "SecurityDomainUploadStatus", action: rbac.SecurityDomainUploadGet, versionOptional: true, h: a.sdPending},

		// RBAC and settings (spec §5). RBAC paths reach these patterns
		// rewritten by rbacRequest, their scope in the context; changes
		// need an activated HSM, reads do not. Settings have no data
		// action of their own: see settings.go.
		{plane: hsmPlane, method: "GET", pattern: rbacDefinitions, op: "RoleDefinitionList", action: rbac.RoleDefinitionsRead, scope: rbacScope, h: a.listRoleDefinitions},
		{plane: hsmPlane, method: "GET", pattern: rbacDefinitions + "/{name}", op: "RoleDefinitionGet", action: rbac.RoleDefinitionsRead, scope: rbacScope, h: a.getRoleDefinition},
		{plane: hsmPlane, method: "PUT", pattern: rbacDefinitions + "/{name}", op: "RoleDefinitionCreate", action: rbac.RoleDefinitionsWrite, scope: rbacScope, needsActive: true, limit: small, h: a.putRoleDefinition},
		{plane: hsmPlane, method: "DELETE", pattern: rbacDefinitions + "/{name}", op: "RoleDefinitionDelete", action: rbac.RoleDefinitionsDelete, scope: rbacScope, needsActive: true, h: a.deleteRoleDefinition},
		{plane: hsmPlane, method: "GET", pattern: rbacAssignments, op: "RoleAssignmentList", action: rbac.RoleAssignmentsRead, scope: rbacScope, h: a.listRoleAssignments},
		{plane: hsmPlane, method: "GET", pattern: rbacAssignments + "/{name}", op: "RoleAssignmentGet", action: rbac.RoleAssignmentsRead, scope: rbacScope, h: a.getRoleAssignment},
		{plane: hsmPlane, method: "PUT", pattern: rbacAssignments + "/{name}", op: "RoleAssignmentCreate", action: rbac.RoleAssignmentsWrite, scope: rbacScope, needsActive: true, limit: small, h: a.putRoleAssignment},
		{plane: hsmPlane, method: "DELETE", pattern: rbacAssignments + "/{name}", op: "RoleAssignmentDelete", action: rbac.RoleAssignmentsDelete, scope: rbacScope, needsActive: true, h: a.deleteRoleAssignment},
		{plane: hsmPlane, method: "GET", pattern: "/settings", op: "SettingList", action: rbac.RoleDefinitionsRead, h: a.listSettings},
		{plane: hsmPlane, method: "GET", pattern: "/settings/{name}", op: "SettingGet", action: rbac.RoleDefinitionsRead, h: a.getSetting},
		{plane: hsmPlane, method: "PATCH", pattern: "/settings/{name}", op: "SettingUpdate", action: rbac.RoleDefinitionsWrite, needsActive: true, limit: small, h: a.updateSetting},

		// Keys (spec §4.1). Every key route needs an activated HSM; an
		// empty version segment means the current version (spec §9.13).
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/create", op: "KeyCreate", action: rbac.KeysCreate, scope: keyScope, needsActive: true, limit: small, h: a.createKey},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}", op: "KeyImport", action: rbac.KeysImport, scope: keyScope, needsActive: true, limit: small, h: a.importKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys", op: "KeyList", action: rbac.KeysRead, scope: keysScope, needsActive: true, h: a.listKeys},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}", op: "KeyGet", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/{$}", op: "KeyGet", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/{version}", op: "KeyGet", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/versions", op: "KeyListVersions", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.listKeyVersions},
		{plane: hsmPlane, method: "PATCH", pattern: "/keys/{name}", op: "KeyUpdate", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.updateKey},
		{plane: hsmPlane, method: "PATCH", pattern: "/keys/{name}/{$}", op: "KeyUpdate", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.updateKey},
		{plane: hsmPlane, method: "PATCH", pattern: "/keys/{name}/{version}", op: "KeyUpdate", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.updateKey},
		{plane: hsmPlane, method: "DELETE", pattern: "/keys/{name}", op: "KeyDelete", action: rbac.KeysDelete, scope: keyScope, needsActive: true, h: a.deleteKey},
		{plane: hsmPlane, method: "GET", pattern: "/deletedkeys", op: "KeyListDeleted", action: rbac.DeletedKeysRead, scope: keysScope, needsActive: true, h: a.listDeletedKeys},
		{plane: hsmPlane, method: "GET", pattern: "/deletedkeys/{name}", op: "KeyGetDeleted", action: rbac.DeletedKeysRead, scope: keyScope, needsActive: true, h: a.getDeletedKey},
		{plane: hsmPlane, method: "POST", pattern: "/deletedkeys/{name}/recover", op: "KeyRecover", action: rbac.DeletedKeysRecover, scope: keyScope, needsActive: true, h: a.recoverKey},
		{plane: hsmPlane, method: "DELETE", pattern: "/deletedkeys/{name}", op: "KeyPurge", action: rbac.DeletedKeysDelete, scope: keyScope, needsActive: true, h: a.purgeKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/backup", op: "KeyBackup", action: rbac.KeysBackup, scope: keyScope, needsActive: true, h: a.backupKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/restore", op: "KeyRestore", action: rbac.KeysRestore, scope: keysScope, needsActive: true, limit: 4 << 20, h: a.restoreKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/rotate", op: "KeyRotate", action: rbac.KeysRotate, scope: keyScope, needsActive: true, h: a.rotateKey},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/rotationpolicy", op: "KeyRotationPolicyGet", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.getRotationPolicy},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}/rotationpolicy", op: "KeyRotationPolicySet", action: rbac.KeysWrite, scope: keyScope, needsActive: true, limit: small, h: a.putRotationPolicy},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/encrypt", op: "KeyEncrypt", action: rbac.KeysEncrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpEncrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/encrypt", op: "KeyEncrypt", action: rbac.KeysEncrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpEncrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/decrypt", op: "KeyDecrypt", action: rbac.KeysDecrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpDecrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/decrypt", op: "KeyDecrypt", action: rbac.KeysDecrypt, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpDecrypt)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/wrapkey", op: "KeyWrap", action: rbac.KeysWrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpWrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/wrapkey", op: "KeyWrap", action: rbac.KeysWrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpWrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/unwrapkey", op: "KeyUnwrap", action: rbac.KeysUnwrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpUnwrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/unwrapkey", op: "KeyUnwrap", action: rbac.KeysUnwrap, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.keyOp(keys.OpUnwrapKey)},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/sign", op: "KeySign", action: rbac.KeysSign, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.signKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/sign", op: "KeySign", action: rbac.KeysSign, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.signKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/verify", op: "KeyVerify", action: rbac.KeysVerify, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.verifyKey},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/verify", op: "KeyVerify", action: rbac.KeysVerify, scope: keyScope, needsActive: true, limit: 256 << 10, h: a.verifyKey},
		{plane: hsmPlane, method: "POST", pattern: "/rng", op: "GetRandomBytes", action: rbac.RNG, limit: 4 << 10, h: a.rng},

		// Full backup, full restore, selective key restore (spec §3); the
		// status routes work without an api-version, and restore status
		// also while a restore runs (every other route answers 503 then).
		{plane: hsmPlane, method: "POST", pattern: "/backup", op: "BackupStart", action: rbac.BackupStart, needsActive: true, limit: small, h: a.startBackup},
		{plane: hsmPlane, method: "POST", pattern: "/prebackup", op: "BackupPreCheck", action: rbac.BackupStart, needsActive: true, limit: small, h: a.preBackup},
		{plane: hsmPlane, method: "GET", pattern: "/backup/{job}/pending", op: "BackupStatus", action: rbac.BackupStatus, versionOptional: true, h: a.backupStatus},
		{plane: hsmPlane, method: "PUT", pattern: "/restore", op: "RestoreStart", action: rbac.RestoreStart, needsActive: true, limit: small, h: a.startRestore},
		{plane: hsmPlane, method: "PUT", pattern: "/prerestore", op: "RestorePreCheck", action: rbac.RestoreStart, needsActive: true, limit: small, h: a.preRestore},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}/restore", op: "SelectiveKeyRestore", action: rbac.RestoreStart, needsActive: true, limit: small, h: a.startKeyRestore},
		{plane: hsmPlane, method: "GET", pattern: "/restore/{job}/pending", op: "RestoreStatus", action: rbac.RestoreStatus, versionOptional: true, duringRestore: true, h: a.restoreStatus},

		// Scheduled backups, Tresor's extension: changing the policy needs
		// what starting a backup needs, reading it the backup status action.
		{plane: hsmPlane, method: "PUT", pattern: "/backup/policy", op: "BackupPolicySet", action: rbac.BackupStart, needsActive: true, limit: small, h: a.putBackupPolicy},
		{plane: hsmPlane, method: "GET", pattern: "/backup/policy", op: "BackupPolicyGet", action: rbac.BackupStatus, needsActive: true, h: a.getBackupPolicy},
		{plane: hsmPlane, method: "DELETE", pattern: "/backup/policy", op: "BackupPolicyDelete", action: rbac.BackupStart, needsActive: true, h: a.deleteBackupPolicy},
	}
}
