package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tresor/internal/barrier/pkcs11"
	"tresor/internal/location"
)

// Config configures a region server. The same keys are accepted in a JSON
// config file (--config); unknown keys are refused.
type Config struct {
	// DataDir holds the store, the seal key and (with Dev) the dev CA.
	DataDir string `json:"dataDir"`
	// Listen is the address to listen on (default 127.0.0.1:8443).
	Listen string `json:"listen"`
	// Region is the location name (default "local").
	Region string `json:"region"`
	// RegionDisplayName is the location's display name, which ARM clients
	// (az) map to the name (default: Azure's display name when Region is
	// the name of an Azure region, such as "East US 2" for eastus2, else
	// Region).
	RegionDisplayName string `json:"regionDisplayName"`
	// DNSSuffix: HSM endpoints are https://{name}.{DNSSuffix}:{port}.
	DNSSuffix string `json:"dnsSuffix"`
	// PublicURL is the advertised region endpoint (default https://localhost:{port}).
	PublicURL string `json:"publicUrl"`
	// TLSCert and TLSKey are PEM files; without them Dev generates a CA.
	TLSCert string `json:"tlsCert"`
	TLSKey  string `json:"tlsKey"`
	// Dev creates everything needed on first start (CA, certificate, seal, admin).
	Dev bool `json:"dev"`
	// SealKeyFile is the file seal's key (default {DataDir}/seal.key).
	SealKeyFile string `json:"sealKeyFile"`
	// Seal chooses the region's seal; without it (or with type "file")
	// the file seal at SealKeyFile is used, as in earlier versions.
	Seal SealConfig `json:"seal"`
	// PurgeInterval is how often soft-deleted instances past their
	// scheduled purge date are purged (default 1m).
	PurgeInterval Duration `json:"purgeInterval"`
	// BackupDirs are the local directories that file:// backup
	// destinations may name (Tresor's extension to Azure Blob Storage).
	// With Dev, {DataDir}/backups is one of them and is created.
	BackupDirs []string `json:"backupDirs"`
	// Identity configures tokens and trusted issuers.
	Identity IdentityConfig `json:"identity"`

	// MaxConnections caps the region's concurrent connections (default
	// 1024); beyond it new connections are closed at accept. Keep it well
	// below the process's file-descriptor limit. The last sixteenth of the
	// slots go only to client addresses that hold no connection yet, so a
	// health check gets in while a few addresses hold the rest.
	MaxConnections int `json:"maxConnections"`
	// MaxConnectionsPerClient caps the concurrent connections of one client
	// address (an IPv6 client by its /64; default 64, 0 = no cap). Behind a
	// reverse proxy or a large NAT every client has the same address: raise
	// it or set 0 there.
	MaxConnectionsPerClient int `json:"maxConnectionsPerClient"`
	// RequestBodyTimeout is how long a request's body may take to arrive
	// after its headers (default 30s); a slower request fails with 408.
	RequestBodyTimeout Duration `json:"requestBodyTimeout"`
	// ResponseTimeout bounds a request from its headers to the end of its
	// response (default 2m): a client that does not read its answer is cut.
	ResponseTimeout Duration `json:"responseTimeout"`

	// TokenRatePerAddress limits token requests per client address (IPv6
	// by /64; default 100/s, bursts of 200); TokenRatePerClient per client
	// id (default 50/s, bursts of 100). Beyond them the token endpoint
	// answers 429 with Retry-After, as Entra ID does. Repeated failed
	// sign-ins of one client id also back off (5 within a minute block it
	// for 1s, then 2s, 4s, … up to a minute; a success resets).
	TokenRatePerAddress Rate `json:"tokenRatePerAddress"`
	TokenRatePerClient  Rate `json:"tokenRatePerClient"`
	// PrincipalRate limits the authenticated requests of each principal
	// (object id) on both endpoints (default 2000/s, bursts of 4000);
	// beyond it the answer is 429 Throttled with Retry-After.
	PrincipalRate Rate `json:"principalRate"`
	// MaxKeysPerHsm is how many keys an HSM may hold, soft-deleted ones
	// included, whatever their versions (default 5000, Managed HSM's
	// limit; 0 = no limit). New keys beyond it are refused (409
	// KeyLimitExceeded), and so is a full restore of a backup holding more.
	MaxKeysPerHsm int `json:"maxKeysPerHsm"`

	// StrictIssuers refuses to start when a trusted issuer's keys cannot
	// be fetched or read; without it the server starts, logs why and keeps
	// retrying (once a minute) while refusing the issuer's tokens.
	StrictIssuers bool `json:"strictIssuers"`

	// Audit configures the audit log.
	Audit AuditConfig `json:"audit"`

	// Cluster runs the region as a node of a raft cluster (docs/cluster.md);
	// without cluster.nodeId it is one process.
	Cluster ClusterConfig `json:"cluster"`

	// LogFormat is the server log's format: "text" (default, slog's
	// key=value lines) or "json" (one JSON object a line).
	LogFormat string `json:"logFormat"`
	// LogLevel is the least level logged: "debug", "info" (default),
	// "warn" or "error". Debug adds why bearer tokens were refused.
	LogLevel string `json:"logLevel"`
	// AdminListen is the address of the admin listener, which serves
	// /metrics, /healthz and /readyz over plain HTTP (default "": none).
	// It carries no secrets but is unauthenticated: bind it to loopback or
	// a private network.
	AdminListen string `json:"adminListen"`
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the admin listener, which it needs; never on the region's own
	// listener. Profiles show no key material, but they do show the
	// code's hot paths and timings: keep it for operators.
	Pprof bool `json:"pprof"`
	// Load, if set, reads the configuration again for [Server.Reload]:
	// `tresor server --config` sets it to read the file and put the
	// command line's flags over it, as at start. Without it there is
	// nothing to reload.
	Load func() (Config, error) `json:"-"`
	// Clock, if set, is the time of the instance and key lifecycles
	// (deletion dates, purges, rotations); tests set it. Tokens always use
	// the real time.
	Clock func() time.Time `json:"-"`
}

// IdentityConfig configures authentication.
type IdentityConfig struct {
	// TenantID is the region's tenant: the {tenant} of its token endpoint
	// and the tid of its tokens, and the tenant of HSMs its own principals
	// create. Without it the region keeps the tenant it generated on its
	// first start; set, it replaces that one (HSMs keep the tenant they
	// were created with).
	TenantID string `json:"tenantId"`
	// Authorization is the URL advertised in the HSM challenge (default
	// {PublicURL}/{tenant}).
	Authorization string `json:"authorization"`
	// Resource is the challenge's resource and the HSM token audience
	// (default https://{DNSSuffix}:{port}, the port left out on 443).
	Resource string `json:"resource"`
	// TokenLifetime of issued tokens (default 1h).
	TokenLifetime Duration `json:"tokenLifetime"`
	// RegionAdmins are object ids of external principals that administer the region.
	RegionAdmins []string `json:"regionAdmins"`
	// TrustedIssuers are external identity providers whose tokens are accepted.
	TrustedIssuers []TrustedIssuerConfig `json:"trustedIssuers"`
	// ExtraARMAudiences are accepted beside the defaults in the region's
	// own tokens for the region endpoint (ARM, identity, /tresor), and
	// ExtraHSMAudiences in its tokens for the HSM endpoints (for example
	// https://managedhsm.azure.net). The region issues tokens for them.
	ExtraARMAudiences []string `json:"extraArmAudiences"`
	ExtraHSMAudiences []string `json:"extraHsmAudiences"`
	// ExtraAudiences is refused: it was accepted on both endpoints, which
	// made a token of one plane good on the other. Split it into
	// ExtraARMAudiences and ExtraHSMAudiences.
	ExtraAudiences []string `json:"extraAudiences,omitempty"`
}

// AuditConfig configures the audit log: one hash-chained JSON line per
// authenticated request (package audit; docs/security.md).
type AuditConfig struct {
	// Path is the log file (--audit-log; default {DataDir}/audit/audit.log).
	// There is no way to turn the audit log off.
	Path string `json:"path"`
	// MaxSizeMB is the size past which the file is rotated (default 100).
	MaxSizeMB int `json:"maxSizeMB"`
	// FailClosed answers 500 to a request whose audit line cannot be
	// written (default true); false answers it and logs the failure.
	FailClosed bool `json:"failClosed"`
	// SyncInterval is how often the log is fsynced (default 100ms): a
	// request is answered once its line is written to the file, which a
	// killed process cannot lose; a machine that loses power may lose the
	// lines of the last interval. 0s fsyncs before every answer (about a
	// millisecond more per request on a serial client).
	SyncInterval Duration `json:"syncInterval"`
}

// TrustedIssuerConfig is one external issuer. Its tokens are accepted on
// the region endpoint when their aud is one of ARMAudiences and on the HSM
// endpoints when it is one of HSMAudiences; at least one of the two lists is
// required.
type TrustedIssuerConfig struct {
	// Issuer is the exact iss claim of the issuer's tokens.
	Issuer string `json:"issuer"`
	// DiscoveryURL is the issuer's OpenID discovery document (https); its
	// jwks_uri names the signing keys. Exactly one of DiscoveryURL and
	// JWKSFile is required.
	DiscoveryURL string `json:"discoveryUrl"`
	// JWKSFile is a local JWK Set file of the issuer's signing keys.
	JWKSFile string `json:"jwksFile"`
	// CAFile is a PEM file of the CA certificates that the issuer's
	// discovery document and JWKS are served with (a private CA). When set,
	// only these roots are trusted for the issuer; when empty, the system's.
	CAFile string `json:"caFile"`
	// ARMAudiences are the aud values accepted on the region endpoint: the
	// cloud's activeDirectoryResourceId that az and the ARM SDKs ask for
	// (e.g. "https://management.core.windows.net/").
	ARMAudiences []string `json:"armAudiences"`
	// HSMAudiences are the aud values accepted on the HSM endpoints: the
	// challenge's resource, https://{dnsSuffix}[:port], that az and the Key
	// Vault SDKs ask for.
	HSMAudiences []string `json:"hsmAudiences"`
	// Audiences is refused: it was accepted on both planes. Split it into
	// ARMAudiences and HSMAudiences.
	Audiences []string `json:"audiences,omitempty"`
	// PrincipalClaim names the claim holding the principal's object id
	// (default "oid").
	PrincipalClaim string `json:"principalClaim"`
	// TenantIDs are the tenants the issuer speaks for: an HSM that a
	// principal of this issuer creates may record one of them as its
	// tenantId (the one the request names, else the token's tid if it is
	// one). Without them the token's tid is the issuer's tenant.
	TenantIDs []string `json:"tenantIds"`
	// ConsoleClientID, if set, lets people sign in to the web console
	// through this issuer (authorization code with PKCE): the client id
	// the console is registered under at the issuer, as a public client
	// with the redirect URI {region endpoint}/console/oidc/callback. It
	// needs discoveryUrl (for the authorization and token endpoints) and
	// both armAudiences and hsmAudiences (the console asks for a token of
	// each, the second with the refresh token).
	ConsoleClientID string `json:"consoleClientId,omitempty"`
}

// Rate is a rate limit: perSecond requests a second in bursts of up to
// burst (0: twice perSecond). perSecond 0 turns the limit off.
type Rate struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

func (r Rate) validate(field string) error {
	if r.PerSecond < 0 || r.Burst < 0 {
		return fmt.Errorf("config: %s: perSecond and burst must be 0 or more", field)
	}
	return nil
}

// Duration is a time.Duration written as "90s", "5m" in JSON.
type Duration struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"90s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:        "127.0.0.1:8443",
		Region:        "local",
		DNSSuffix:     "managedhsm.localhost",
		PurgeInterval: Duration{time.Minute},
		Identity:      IdentityConfig{TokenLifetime: Duration{time.Hour}},

		MaxConnections:          1024,
		MaxConnectionsPerClient: 64,
		RequestBodyTimeout:      Duration{30 * time.Second},
		ResponseTimeout:         Duration{2 * time.Minute},
		TokenRatePerAddress:     Rate{PerSecond: 100}, // bursts of twice the rate
		TokenRatePerClient:      Rate{PerSecond: 50},
		PrincipalRate:           Rate{PerSecond: 2000},
		MaxKeysPerHsm:           5000,
		Audit:                   AuditConfig{MaxSizeMB: 100, FailClosed: true, SyncInterval: Duration{100 * time.Millisecond}},
		LogFormat:               "text",
		LogLevel:                "info",
	}
}

// LoadConfigFile reads a JSON config file over cfg, refusing unknown keys.
func LoadConfigFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// DisplayName is the region's display name: RegionDisplayName, else
// Azure's display name of Region, else Region.
func (c Config) DisplayName() string {
	if c.RegionDisplayName != "" {
		return c.RegionDisplayName
	}
	if d, ok := location.DisplayName(c.Region); ok {
		return d
	}
	return c.Region
}

// Validate checks the configuration; messages name the field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: dataDir (--data-dir) is required")
	}
	if err := c.Seal.validate(c.SealKeyFile); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("config: listen (--listen) %q: %v", c.Listen, err)
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			return fmt.Errorf("config: adminListen (--admin-listen) %q: %v", c.AdminListen, err)
		}
	}
	if c.Pprof && c.AdminListen == "" {
		return fmt.Errorf("config: pprof (--pprof) needs adminListen (--admin-listen): profiles are served there only")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("config: logFormat (--log-format) %q must be text or json", c.LogFormat)
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		return fmt.Errorf("config: logLevel (--log-level) %q must be debug, info, warn or error", c.LogLevel)
	}
	if c.Region == "" || strings.ContainsAny(c.Region, " /") {
		return fmt.Errorf("config: region (--region) %q must be a name without spaces or slashes", c.Region)
	}
	if strings.TrimSpace(c.RegionDisplayName) != c.RegionDisplayName || strings.ContainsAny(c.RegionDisplayName, "/\n") {
		return fmt.Errorf("config: regionDisplayName (--region-display-name) %q must not start or end with a space nor hold a slash or a line break", c.RegionDisplayName)
	}
	if c.RegionDisplayName != "" && !location.Equal(c.RegionDisplayName, c.Region) {
		return fmt.Errorf("config: regionDisplayName (--region-display-name) %q must be region %q with spaces or other case (ARM compares locations ignoring both)", c.RegionDisplayName, c.Region)
	}
	if c.DNSSuffix == "" || strings.HasPrefix(c.DNSSuffix, ".") || strings.Contains(c.DNSSuffix, "/") {
		return fmt.Errorf("config: dnsSuffix (--dns-suffix) %q must be a DNS name", c.DNSSuffix)
	}
	if !c.Dev && (c.TLSCert == "" || c.TLSKey == "") {
		return fmt.Errorf("config: tlsCert and tlsKey (--tls-cert, --tls-key) are required unless dev (--dev) is set")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("config: tlsCert and tlsKey (--tls-cert, --tls-key) go together")
	}
	for i, d := range c.BackupDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("config: backupDirs[%d] (--backup-dir) %q must be an absolute path", i, d)
		}
	}
	if c.Audit.SyncInterval.Duration < 0 || c.Audit.SyncInterval.Duration > time.Minute {
		return fmt.Errorf("config: audit.syncInterval (--audit-sync-interval) must be between 0s (fsync before every answer) and 1m")
	}
	if c.Audit.MaxSizeMB < 1 || c.Audit.MaxSizeMB > 1<<20 {
		return fmt.Errorf("config: audit.maxSizeMB (--audit-max-size-mb) must be between 1 and 1048576")
	}
	if c.PurgeInterval.Duration <= 0 {
		return fmt.Errorf("config: purgeInterval must be positive")
	}
	if c.MaxConnections < 1 {
		return fmt.Errorf("config: maxConnections (--max-connections) must be at least 1")
	}
	if c.MaxConnectionsPerClient < 0 {
		return fmt.Errorf("config: maxConnectionsPerClient (--max-connections-per-client) must be 0 (no cap) or more")
	}
	if c.RequestBodyTimeout.Duration <= 0 {
		return fmt.Errorf("config: requestBodyTimeout (--request-body-timeout) must be positive")
	}
	if c.ResponseTimeout.Duration < c.RequestBodyTimeout.Duration {
		return fmt.Errorf("config: responseTimeout (--response-timeout) must be at least requestBodyTimeout")
	}
	for field, r := range map[string]Rate{"tokenRatePerAddress": c.TokenRatePerAddress, "tokenRatePerClient": c.TokenRatePerClient, "principalRate": c.PrincipalRate} {
		if err := r.validate(field); err != nil {
			return err
		}
	}
	if c.MaxKeysPerHsm < 0 {
		return fmt.Errorf("config: maxKeysPerHsm (--max-keys-per-hsm) must be 0 (no limit) or more")
	}
	if c.Identity.TokenLifetime.Duration < time.Minute || c.Identity.TokenLifetime.Duration > 24*time.Hour {
		return fmt.Errorf("config: identity.tokenLifetime must be between 1m and 24h")
	}
	if c.Identity.TenantID != "" && !validTenant(c.Identity.TenantID) {
		return fmt.Errorf("config: identity.tenantId %q must be 1-64 letters, digits, '-' or '.' (a tenant id such as a uuid)", c.Identity.TenantID)
	}
	if len(c.Identity.ExtraAudiences) > 0 {
		return fmt.Errorf("config: identity.extraAudiences is no longer accepted (it made tokens of one plane good on the other): " +
			"list the audiences of region endpoint tokens in identity.extraArmAudiences and those of HSM tokens in identity.extraHsmAudiences")
	}
	if err := checkAudiences("identity.extraArmAudiences", c.Identity.ExtraARMAudiences); err != nil {
		return err
	}
	if err := checkAudiences("identity.extraHsmAudiences", c.Identity.ExtraHSMAudiences); err != nil {
		return err
	}
	for i, t := range c.Identity.TrustedIssuers {
		p := fmt.Sprintf("config: identity.trustedIssuers[%d]", i)
		switch {
		case len(t.Audiences) > 0:
			return fmt.Errorf("%s.audiences is no longer accepted (its tokens were good on both planes): "+
				"split it into armAudiences (the aud of tokens for the region endpoint, az's activeDirectoryResourceId) "+
				"and hsmAudiences (the aud of tokens for the HSM endpoints, https://{dnsSuffix}[:port])", p)
		case t.Issuer == "" || (t.DiscoveryURL == "") == (t.JWKSFile == ""):
			return fmt.Errorf("%s needs issuer and one of discoveryUrl or jwksFile", p)
		case len(t.ARMAudiences) == 0 && len(t.HSMAudiences) == 0:
			return fmt.Errorf("%s needs armAudiences, hsmAudiences or both", p)
		case t.CAFile != "" && t.DiscoveryURL == "":
			return fmt.Errorf("%s.caFile goes with discoveryUrl", p)
		case t.ConsoleClientID != "" && (t.DiscoveryURL == "" || len(t.ARMAudiences) == 0 || len(t.HSMAudiences) == 0):
			return fmt.Errorf("%s.consoleClientId needs discoveryUrl, armAudiences and hsmAudiences", p)
		}
		if err := checkAudiences(p[len("config: "):]+".armAudiences", t.ARMAudiences); err != nil {
			return err
		}
		if err := checkAudiences(p[len("config: "):]+".hsmAudiences", t.HSMAudiences); err != nil {
			return err
		}
		for j, tid := range t.TenantIDs {
			if !validTenant(tid) {
				return fmt.Errorf("config: identity.trustedIssuers[%d].tenantIds[%d] %q must be 1-64 letters, digits, '-' or '.' (a tenant id such as a uuid)", i, j, tid)
			}
		}
	}
	return nil
}

// logLevel is LogLevel as a slog level (info when empty).
func (c Config) logLevel() (slog.Level, error) {
	if c.LogLevel == "" {
		return slog.LevelInfo, nil
	}
	l, ok := logLevels[c.LogLevel]
	if !ok {
		return 0, fmt.Errorf("config: logLevel (--log-level) %q must be debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

func checkAudiences(field string, auds []string) error {
	for i, a := range auds {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("config: %s[%d] is empty", field, i)
		}
	}
	return nil
}

// validTenant reports whether t can be a tenant id: what the region's
// issuer accepts in its {tenant} path segment.
func validTenant(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Seal types of [SealConfig].
const (
	SealFile   = "file"
	SealPKCS11 = "pkcs11"
)

// SealConfig is the "seal" object of the config file: {"type": "file"} (the
// default; the key file is sealKeyFile) or {"type": "pkcs11", "library",
// "tokenLabel", "pinFile", "keyLabel"}. A pkcs11 seal needs a build with
// -tags pkcs11.
type SealConfig struct {
	// Type is "file" (default) or "pkcs11".
	Type string `json:"type"`
	pkcs11.Config
}

func (c SealConfig) validate(keyFile string) error {
	switch c.Type {
	case "", SealFile:
		if c.Config != (pkcs11.Config{}) {
			return fmt.Errorf("config: seal.library, seal.tokenLabel, seal.pinFile and seal.keyLabel (--seal-…) are for seal.type %q, not %q", SealPKCS11, SealFile)
		}
		return nil
	case SealPKCS11:
		if keyFile != "" {
			return fmt.Errorf("config: sealKeyFile (--seal-key-file) is for the file seal, not seal.type %q", SealPKCS11)
		}
		return c.Config.Validate()
	default:
		return fmt.Errorf("config: seal.type (--seal-type) %q must be %q or %q", c.Type, SealFile, SealPKCS11)
	}
}
