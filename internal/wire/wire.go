// Package wire holds the JSON shapes of the Azure Managed HSM APIs that
// Tresor speaks (control plane in ARM's shape, data plane as Key Vault's) and
// of Tresor's own identity endpoints. The server's api package and the
// client package share them; wire imports nothing of either.
package wire

import "time"

// Error is Azure's error body: {"error":{"code","message","innererror"}}.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of [Error].
type ErrorDetail struct {
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	InnerError *InnerError `json:"innererror,omitempty"`
}

// InnerError narrows an error's code (e.g. "ForbiddenByRbac").
type InnerError struct {
	Code string `json:"code"`
}

// ManagedHSM is the ARM resource Microsoft.KeyVault/managedHSMs.
type ManagedHSM struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name,omitempty"`
	Type       string            `json:"type,omitempty"`
	Location   string            `json:"location"`
	SKU        *SKU              `json:"sku,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	SystemData *SystemData       `json:"systemData,omitempty"`
	Properties ManagedHSMProps   `json:"properties"`
	// Identity is stored and returned; Tresor has no managed identities
	// to give the HSM.
	Identity *ManagedServiceIdentity `json:"identity,omitempty"`
}

// ManagedServiceIdentity is ARM's identity of a resource.
type ManagedServiceIdentity struct {
	// Type is None, SystemAssigned, UserAssigned or
	// "SystemAssigned,UserAssigned".
	Type                   string                           `json:"type"`
	PrincipalID            string                           `json:"principalId,omitempty"`
	TenantID               string                           `json:"tenantId,omitempty"`
	UserAssignedIdentities map[string]*UserAssignedIdentity `json:"userAssignedIdentities,omitempty"`
}

// UserAssignedIdentity is a value of
// [ManagedServiceIdentity.UserAssignedIdentities] (empty in requests).
type UserAssignedIdentity struct {
	PrincipalID string `json:"principalId,omitempty"`
	ClientID    string `json:"clientId,omitempty"`
}

// CheckNameAvailability is the body of POST
// /subscriptions/{sub}/providers/Microsoft.KeyVault/checkMhsmNameAvailability.
type CheckNameAvailability struct {
	Name string `json:"name"`
}

// NameAvailability answers [CheckNameAvailability]. Reason
// (AccountNameInvalid or AlreadyExists) and Message are set when the name
// is not available.
type NameAvailability struct {
	NameAvailable bool   `json:"nameAvailable"`
	Reason        string `json:"reason,omitempty"`
	Message       string `json:"message,omitempty"`
}

// SKU of a managed HSM; accepted and echoed.
type SKU struct {
	Family string `json:"family,omitempty"`
	Name   string `json:"name,omitempty"`
}

// SystemData is ARM's creation/modification record.
type SystemData struct {
	CreatedBy          string     `json:"createdBy,omitempty"`
	CreatedByType      string     `json:"createdByType,omitempty"`
	CreatedAt          *time.Time `json:"createdAt,omitempty"`
	LastModifiedBy     string     `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string     `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     *time.Time `json:"lastModifiedAt,omitempty"`
}

// ManagedHSMProps are the properties of a [ManagedHSM].
type ManagedHSMProps struct {
	TenantID                  string                    `json:"tenantId,omitempty"`
	InitialAdminObjectIDs     []string                  `json:"initialAdminObjectIds,omitempty"`
	HsmURI                    string                    `json:"hsmUri,omitempty"`
	EnableSoftDelete          *bool                     `json:"enableSoftDelete,omitempty"`
	SoftDeleteRetentionInDays *int                      `json:"softDeleteRetentionInDays,omitempty"`
	EnablePurgeProtection     *bool                     `json:"enablePurgeProtection,omitempty"`
	CreateMode                string                    `json:"createMode,omitempty"`
	StatusMessage             string                    `json:"statusMessage,omitempty"`
	ProvisioningState         string                    `json:"provisioningState,omitempty"`
	NetworkACLs               map[string]any            `json:"networkAcls,omitempty"`
	PublicNetworkAccess       string                    `json:"publicNetworkAccess,omitempty"`
	SecurityDomainProperties  *SecurityDomainProperties `json:"securityDomainProperties,omitempty"`
	ScheduledPurgeDate        *time.Time                `json:"scheduledPurgeDate,omitempty"`
	Regions                   []map[string]any          `json:"regions,omitempty"`
	// PrivateEndpointConnections is read-only; Tresor has none.
	PrivateEndpointConnections []map[string]any `json:"privateEndpointConnections,omitempty"`
}

// SecurityDomainProperties tells whether the HSM is activated.
type SecurityDomainProperties struct {
	ActivationStatus        string `json:"activationStatus"`
	ActivationStatusMessage string `json:"activationStatusMessage,omitempty"`
}

// ManagedHSMPatch is the body of PATCH …/managedHSMs/{name}.
type ManagedHSMPatch struct {
	Tags       map[string]string `json:"tags,omitempty"`
	SKU        *SKU              `json:"sku,omitempty"`
	Properties *ManagedHSMProps  `json:"properties,omitempty"`
}

// ManagedHSMList is a page of managed HSMs.
type ManagedHSMList struct {
	Value    []ManagedHSM `json:"value"`
	NextLink string       `json:"nextLink,omitempty"`
}

// DeletedManagedHSM is Microsoft.KeyVault/deletedManagedHSMs.
type DeletedManagedHSM struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Type       string                 `json:"type"`
	Properties DeletedManagedHSMProps `json:"properties"`
}

// DeletedManagedHSMProps are the properties of a [DeletedManagedHSM].
type DeletedManagedHSMProps struct {
	MhsmID                 string            `json:"mhsmId"`
	Location               string            `json:"location"`
	DeletionDate           time.Time         `json:"deletionDate"`
	ScheduledPurgeDate     time.Time         `json:"scheduledPurgeDate"`
	PurgeProtectionEnabled bool              `json:"purgeProtectionEnabled"`
	Tags                   map[string]string `json:"tags,omitempty"`
}

// DeletedManagedHSMList is a page of deleted managed HSMs.
type DeletedManagedHSMList struct {
	Value    []DeletedManagedHSM `json:"value"`
	NextLink string              `json:"nextLink,omitempty"`
}

// Subscription is an entry of GET /subscriptions.
type Subscription struct {
	ID             string `json:"id"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId"`
	DisplayName    string `json:"displayName"`
	State          string `json:"state"`
}

// SubscriptionList is the body of GET /subscriptions.
type SubscriptionList struct {
	Value []Subscription `json:"value"`
}

// Location is an entry of GET /subscriptions/{sub}/locations.
type Location struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	DisplayName    string `json:"displayName"`
	RegionalName   string `json:"regionalDisplayName"`
	Type           string `json:"type"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
}

// LocationList is the body of GET /subscriptions/{sub}/locations.
type LocationList struct {
	Value []Location `json:"value"`
}

// OperationStatus is an ARM async-operation status body.
type OperationStatus struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	StartTime *time.Time   `json:"startTime,omitempty"`
	EndTime   *time.Time   `json:"endTime,omitempty"`
	Error     *ErrorDetail `json:"error,omitempty"`
}

// Principal is a service principal of the region's identity service
// (Tresor's own API, /tresor/principals).
type Principal struct {
	ObjectID     string    `json:"objectId"`
	ClientID     string    `json:"clientId"`
	DisplayName  string    `json:"displayName"`
	RegionAdmin  bool      `json:"regionAdmin"`
	Created      time.Time `json:"created"`
	ClientSecret string    `json:"clientSecret,omitempty"` // only in the create answer
}

// PrincipalCreate is the body of POST /tresor/principals.
type PrincipalCreate struct {
	DisplayName string `json:"displayName"`
	RegionAdmin bool   `json:"regionAdmin,omitempty"`
}

// PrincipalList is the body of GET /tresor/principals.
type PrincipalList struct {
	Value []Principal `json:"value"`
}

// Account is the body of GET /tresor/account: who the caller is.
type Account struct {
	ObjectID    string `json:"objectId"`
	ClientID    string `json:"clientId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	TenantID    string `json:"tenantId"`
	Issuer      string `json:"issuer"`
	Region      string `json:"region"`
	RegionAdmin bool   `json:"regionAdmin"`
	// DefaultSubscription is the subscription the region lists first.
	DefaultSubscription string `json:"defaultSubscription"`
}

// Token is the OAuth 2.0 token response.
type Token struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// OAuthError is the OAuth 2.0 error response (Entra ID adds error_codes).
type OAuthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes,omitempty"`
	Timestamp        string `json:"timestamp,omitempty"`
	TraceID          string `json:"trace_id,omitempty"`
}

// RegionInfo is the body of GET /tresor/region (Tresor's own API, no
// authentication): what a client needs to know about a region before it
// signs in.
type RegionInfo struct {
	// Region is the region's name, also the location of its HSMs.
	Region string `json:"region"`
	// DNSSuffix is the suffix of HSM host names: {name}.{dnsSuffix}.
	DNSSuffix string `json:"dnsSuffix"`
	// TenantID is the region's default tenant.
	TenantID string `json:"tenantId"`
	// Endpoint is the region endpoint (control plane and identity).
	Endpoint string `json:"endpoint"`
	// Authority is the base of the token endpoint: {authority}/{tenant}/oauth2/v2.0/token.
	Authority string `json:"authority"`
	// SubscriptionID is the subscription the region lists first.
	SubscriptionID string `json:"subscriptionId"`
	// HSMResource is the audience of data-plane tokens (scope {hsmResource}/.default).
	HSMResource string `json:"hsmResource"`
	// ManagementResource is the audience of control-plane tokens.
	ManagementResource string `json:"managementResource"`
}

// SecurityDomainJWK is a custodian certificate in a download request. The
// server reads the RSA key from X5C[0] and ignores the other fields.
type SecurityDomainJWK struct {
	Kid     string   `json:"kid,omitempty"`
	Kty     string   `json:"kty,omitempty"`
	KeyOps  []string `json:"key_ops,omitempty"`
	N       string   `json:"n,omitempty"`
	E       string   `json:"e,omitempty"`
	X5C     []string `json:"x5c"`
	Use     string   `json:"use,omitempty"`
	X5T     string   `json:"x5t,omitempty"`
	X5TS256 string   `json:"x5t#S256,omitempty"`
	Alg     string   `json:"alg,omitempty"`
}

// CertificateInfo is the body of POST /securitydomain/download.
type CertificateInfo struct {
	Certificates []SecurityDomainJWK `json:"certificates"`
	Required     *int                `json:"required,omitempty"`
}

// SecurityDomainValue carries a security-domain file or upload blob as JSON
// text ({"value": "<json>"}).
type SecurityDomainValue struct {
	Value string `json:"value"`
}

// SecurityDomainStatus is a security-domain operation status (snake_case
// status_details; status InProgress, Success or Failed).
type SecurityDomainStatus struct {
	Status        string `json:"status"`
	StatusDetails string `json:"status_details,omitempty"`
}

// TransferKey is the body of GET /securitydomain/upload: the exchange key
// as a JWK serialized into a string.
type TransferKey struct {
	KeyFormat   string `json:"key_format"`
	TransferKey string `json:"transfer_key"`
}
