package wire

// JSONWebKey is Key Vault's JsonWebKey; binary fields are base64url.
type JSONWebKey struct {
	Kid    string   `json:"kid,omitempty"`
	Kty    string   `json:"kty,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	D      string   `json:"d,omitempty"`
	DP     string   `json:"dp,omitempty"`
	DQ     string   `json:"dq,omitempty"`
	QI     string   `json:"qi,omitempty"`
	P      string   `json:"p,omitempty"`
	Q      string   `json:"q,omitempty"`
	K      string   `json:"k,omitempty"`
	KeyHSM string   `json:"key_hsm,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

// KeyAttributes are a key version's attributes; times are unix seconds.
type KeyAttributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         *int64 `json:"created,omitempty"`
	Updated         *int64 `json:"updated,omitempty"`
	RecoverableDays *int   `json:"recoverableDays,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	Exportable      *bool  `json:"exportable,omitempty"`
	HSMPlatform     string `json:"hsmPlatform,omitempty"`
}

// KeyReleasePolicy is accepted and echoed.
type KeyReleasePolicy struct {
	ContentType string `json:"contentType,omitempty"`
	Immutable   *bool  `json:"immutable,omitempty"`
	Data        string `json:"data,omitempty"`
}

// KeyBundle is a key version with its attributes and tags.
type KeyBundle struct {
	Key           JSONWebKey        `json:"key"`
	Attributes    KeyAttributes     `json:"attributes"`
	Tags          map[string]string `json:"tags,omitempty"`
	Managed       *bool             `json:"managed,omitempty"`
	ReleasePolicy *KeyReleasePolicy `json:"release_policy,omitempty"`
}

// DeletedKeyBundle is a soft-deleted key.
type DeletedKeyBundle struct {
	KeyBundle
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
}

// KeyItem is a key in a list.
type KeyItem struct {
	Kid        string            `json:"kid"`
	Attributes KeyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    *bool             `json:"managed,omitempty"`
}

// DeletedKeyItem is a deleted key in a list.
type DeletedKeyItem struct {
	KeyItem
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
}

// KeyList is a page of keys; NextLink is null on the last page.
type KeyList struct {
	Value    []KeyItem `json:"value"`
	NextLink *string   `json:"nextLink"`
}

// DeletedKeyList is a page of deleted keys.
type DeletedKeyList struct {
	Value    []DeletedKeyItem `json:"value"`
	NextLink *string          `json:"nextLink"`
}

// KeyCreateParameters is the body of POST /keys/{name}/create.
type KeyCreateParameters struct {
	Kty            string            `json:"kty"`
	KeySize        *int              `json:"key_size,omitempty"`
	PublicExponent *int              `json:"public_exponent,omitempty"`
	Curve          string            `json:"crv,omitempty"`
	KeyOps         []string          `json:"key_ops,omitempty"`
	Attributes     *KeyAttributes    `json:"attributes,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	ReleasePolicy  *KeyReleasePolicy `json:"release_policy,omitempty"`
}

// KeyImportParameters is the body of PUT /keys/{name}.
type KeyImportParameters struct {
	Key           *JSONWebKey       `json:"key"`
	HSM           *bool             `json:"Hsm,omitempty"`
	Attributes    *KeyAttributes    `json:"attributes,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	ReleasePolicy *KeyReleasePolicy `json:"release_policy,omitempty"`
}

// KeyUpdateParameters is the body of PATCH /keys/{name}/{version}.
type KeyUpdateParameters struct {
	KeyOps        []string          `json:"key_ops,omitempty"`
	Attributes    *KeyAttributes    `json:"attributes,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	ReleasePolicy *KeyReleasePolicy `json:"release_policy,omitempty"`
}

// KeyOperationsParameters is the body of encrypt, decrypt, wrapkey, unwrapkey.
type KeyOperationsParameters struct {
	Alg   string `json:"alg"`
	Value string `json:"value"`
	IV    string `json:"iv,omitempty"`
	AAD   string `json:"aad,omitempty"`
	Tag   string `json:"tag,omitempty"`
}

// KeyOperationResult is the answer of encrypt, decrypt, wrapkey, unwrapkey and sign.
type KeyOperationResult struct {
	Kid   string `json:"kid"`
	Value string `json:"value"`
	IV    string `json:"iv,omitempty"`
	Tag   string `json:"tag,omitempty"`
	AAD   string `json:"aad,omitempty"`
}

// KeySignParameters is the body of sign.
type KeySignParameters struct {
	Alg   string `json:"alg"`
	Value string `json:"value"`
}

// KeyVerifyParameters is the body of verify.
type KeyVerifyParameters struct {
	Alg    string `json:"alg"`
	Digest string `json:"digest"`
	Value  string `json:"value"`
}

// KeyVerifyResult is the answer of verify.
type KeyVerifyResult struct {
	Value bool `json:"value"`
}

// BackupKeyResult is the answer of backup; KeyRestoreParameters the body of restore.
type BackupKeyResult struct {
	Value string `json:"value"`
}

// KeyRestoreParameters is the body of POST /keys/restore.
type KeyRestoreParameters struct {
	Value string `json:"value"`
}

// KeyRotationPolicy is a key's rotation policy.
type KeyRotationPolicy struct {
	ID              string                    `json:"id,omitempty"`
	LifetimeActions []LifetimeAction          `json:"lifetimeActions"`
	Attributes      *KeyRotationPolicyAttribs `json:"attributes,omitempty"`
}

// LifetimeAction is a trigger and an action of a rotation policy.
type LifetimeAction struct {
	Trigger LifetimeActionTrigger `json:"trigger"`
	Action  LifetimeActionType    `json:"action"`
}

// LifetimeActionTrigger fires after creation or before expiry (ISO 8601 durations).
type LifetimeActionTrigger struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
}

// LifetimeActionType is Rotate or Notify.
type LifetimeActionType struct {
	Type string `json:"type"`
}

// KeyRotationPolicyAttribs are a rotation policy's attributes.
type KeyRotationPolicyAttribs struct {
	ExpiryTime string `json:"expiryTime,omitempty"`
	Created    *int64 `json:"created,omitempty"`
	Updated    *int64 `json:"updated,omitempty"`
}
