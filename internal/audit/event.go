// Package audit implements Tresor's tamper-evident audit log: one JSON line per
// audited request, in the shape of the AuditEvent records that Azure Key
// Vault and Managed HSM write to Azure Monitor
// (https://learn.microsoft.com/azure/key-vault/managed-hsm/logging), each
// line chained to the one before it by SHA-256.
//
// # The chain
//
// Every line carries "seq" (1, 2, 3, … with no gap, across rotated files)
// and "prevHash", the hex SHA-256 of the exact bytes of the line before it
// (without its newline); the first line of a fresh log has 64 zeros. So a
// line that is deleted, changed, inserted or moved is found by [Verify]: the
// seq of the next line jumps, or its prevHash no longer matches. A chain by
// itself cannot tell that lines were cut from the end of the last file, nor
// that the whole tail was rewritten with fresh hashes; compare the last
// hash that Verify reports with one kept elsewhere (the server log names
// the last seq and hash at every rotation and when the log closes).
//
// # Writing
//
// [Open] opens a log file for appending only (mode 0600) and continues the
// chain from its last line, or from the newest rotated file. [Log.Write]
// returns once its line is on disk: concurrent writers are grouped and each
// group is written and fsynced once. When a group would take the file past
// [Options.MaxSize], the file is first renamed to {base}-{time}{ext} and a
// new one started; the chain goes on in it. After any failed write the log
// refuses every later write (what reached the disk is unknown after a failed
// fsync): reopening it continues from what is on disk.
//
// Events never carry request bodies, key material, tokens or secrets: the
// caller fills the fields, and this package has none for such values.
package audit

import (
	"errors"
	"strings"
	"time"
)

// Category is the category of every event, as in Azure's logs.
const Category = "AuditEvent"

// ZeroHash is the prevHash of the first line of a log.
var ZeroHash = strings.Repeat("0", 64)

// Result types of an [Event].
const (
	ResultSuccess = "Success"
	ResultFailure = "Failure"
)

// ErrClosed is returned by [Log.Write] after [Log.Close].
var ErrClosed = errors.New("audit: log closed")

// Event is one audit record: what happened, to which resource, by whom,
// with what result. The field names follow Azure's AuditEvent records; Seq
// and PrevHash are Tresor's chain and are set by [Log.Write].
type Event struct {
	Seq      uint64 `json:"seq"`      // set by Write: 1 for the first line of a log
	PrevHash string `json:"prevHash"` // set by Write: hex SHA-256 of the line before
	// Time is when the request arrived (UTC).
	Time time.Time `json:"time"`
	// ResourceID is the ARM id of the HSM (or the region path requested).
	ResourceID string `json:"resourceId"`
	// OperationName is the operation, e.g. KeyCreate, KeySign,
	// SecurityDomainDownload, RoleAssignmentCreate, BackupStart.
	OperationName string `json:"operationName"`
	// OperationVersion is the request's api-version.
	OperationVersion string `json:"operationVersion,omitempty"`
	// Category is always [Category] (Write sets it).
	Category string `json:"category"`
	// ResultType is [ResultSuccess] or [ResultFailure].
	ResultType string `json:"resultType"`
	// ResultSignature is the HTTP status text, e.g. OK, Forbidden.
	ResultSignature string `json:"resultSignature"`
	// ResultDescription is the error code of a failure.
	ResultDescription string `json:"resultDescription,omitempty"`
	// DurationMs is the time the request took in the server.
	DurationMs int64 `json:"durationMs"`
	// CallerIPAddress is the client's address (without port).
	CallerIPAddress string `json:"callerIpAddress"`
	// CorrelationID is the client's x-ms-client-request-id, if any.
	CorrelationID string `json:"correlationId,omitempty"`
	// Identity is the caller, when its token was valid.
	Identity *Identity `json:"identity,omitempty"`
	// Properties are the request's details.
	Properties Properties `json:"properties"`
}

// Identity is the caller of an [Event].
type Identity struct {
	Claim Claim `json:"claim"` // the token's claims that name the caller
}

// Claim holds the token claims that name a caller.
type Claim struct {
	ObjectID string `json:"oid,omitempty"`   // the principal id (none on a token request)
	AppID    string `json:"appid,omitempty"` // the client (application) id
	TenantID string `json:"tid,omitempty"`   // the tenant
}

// Properties are the details of an [Event].
type Properties struct {
	// ID is the key id (https://{hsm}/keys/{name}[/{version}]) of a key
	// operation, or the HSM's URI for other data-plane operations.
	ID string `json:"id,omitempty"`
	// RequestURI is the request's URL without its query, beside the
	// api-version (query strings may carry SAS tokens).
	RequestURI string `json:"requestUri"`
	// HTTPMethod is the request's method.
	HTTPMethod string `json:"httpMethod"`
	// HTTPStatusCode is the status of the response.
	HTTPStatusCode int `json:"httpStatusCode"`
	// RequestID is the x-ms-request-id the server answered with.
	RequestID string `json:"requestId"`
	// ClientInfo is the client's User-Agent.
	ClientInfo string `json:"clientInfo,omitempty"`
}
