package api

import (
	"net/http"

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
	return []route{
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

		// HSM data plane. Key routes are gated on activation; the key
		// service itself is not part of this version yet.
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/create", action: rbac.KeysCreate, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "PUT", pattern: "/keys/{name}", action: rbac.KeysImport, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "GET", pattern: "/keys", action: rbac.KeysRead, scope: func(*http.Request) string { return "/keys" }, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "GET", pattern: "/keys/{name}/{version...}", action: rbac.KeysRead, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/sign", action: rbac.KeysSign, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/sign", action: rbac.KeysSign, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/{version}/encrypt", action: rbac.KeysEncrypt, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "POST", pattern: "/keys/{name}/encrypt", action: rbac.KeysEncrypt, scope: keyScope, needsActive: true, h: a.keysNotServed},
		{plane: hsmPlane, method: "POST", pattern: "/rng", action: rbac.RNG, limit: 4 << 10, h: a.rng},
	}
}
