package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	// PurgeInterval is how often soft-deleted instances past their
	// scheduled purge date are purged (default 1m).
	PurgeInterval Duration `json:"purgeInterval"`
	// BackupDirs are the local directories that file:// backup
	// destinations may name (Tresor's extension to Azure Blob Storage).
	// With Dev, {DataDir}/backups is one of them and is created.
	BackupDirs []string `json:"backupDirs"`
	// Identity configures tokens and trusted issuers.
	Identity IdentityConfig `json:"identity"`
	// Audit configures the audit log.
	Audit AuditConfig `json:"audit"`
	// Clock, if set, is the time of the instance and key lifecycles
	// (deletion dates, purges, rotations); tests set it. Tokens always use
	// the real time.
	Clock func() time.Time `json:"-"`
}

// IdentityConfig configures authentication.
type IdentityConfig struct {
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
	// ExtraAudiences are accepted on both endpoints beside the defaults
	// (for example https://managedhsm.azure.net).
	ExtraAudiences []string `json:"extraAudiences"`
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
}

// TrustedIssuerConfig is one external issuer.
type TrustedIssuerConfig struct {
	Issuer         string   `json:"issuer"`
	DiscoveryURL   string   `json:"discoveryUrl"`
	JWKSFile       string   `json:"jwksFile"`
	Audiences      []string `json:"audiences"`
	PrincipalClaim string   `json:"principalClaim"`
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
		Audit:         AuditConfig{MaxSizeMB: 100, FailClosed: true},
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

// Validate checks the configuration; messages name the field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: dataDir (--data-dir) is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("config: listen (--listen) %q: %v", c.Listen, err)
	}
	if c.Region == "" || strings.ContainsAny(c.Region, " /") {
		return fmt.Errorf("config: region (--region) %q must be a name without spaces or slashes", c.Region)
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
	if c.Audit.MaxSizeMB < 1 || c.Audit.MaxSizeMB > 1<<20 {
		return fmt.Errorf("config: audit.maxSizeMB (--audit-max-size-mb) must be between 1 and 1048576")
	}
	if c.PurgeInterval.Duration <= 0 {
		return fmt.Errorf("config: purgeInterval must be positive")
	}
	if c.Identity.TokenLifetime.Duration < time.Minute || c.Identity.TokenLifetime.Duration > 24*time.Hour {
		return fmt.Errorf("config: identity.tokenLifetime must be between 1m and 24h")
	}
	for i, t := range c.Identity.TrustedIssuers {
		if t.Issuer == "" || (t.DiscoveryURL == "") == (t.JWKSFile == "") || len(t.Audiences) == 0 {
			return fmt.Errorf("config: identity.trustedIssuers[%d] needs issuer, audiences, and one of discoveryUrl or jwksFile", i)
		}
	}
	return nil
}
