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
	// StrictIssuers refuses to start when a trusted issuer's keys cannot
	// be fetched or read; without it the server starts, logs why and keeps
	// retrying (once a minute) while refusing the issuer's tokens.
	StrictIssuers bool `json:"strictIssuers"`
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
	if c.PurgeInterval.Duration <= 0 {
		return fmt.Errorf("config: purgeInterval must be positive")
	}
	if c.Identity.TokenLifetime.Duration < time.Minute || c.Identity.TokenLifetime.Duration > 24*time.Hour {
		return fmt.Errorf("config: identity.tokenLifetime must be between 1m and 24h")
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
		}
		if err := checkAudiences(p[len("config: "):]+".armAudiences", t.ARMAudiences); err != nil {
			return err
		}
		if err := checkAudiences(p[len("config: "):]+".hsmAudiences", t.HSMAudiences); err != nil {
			return err
		}
	}
	return nil
}

func checkAudiences(field string, auds []string) error {
	for i, a := range auds {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("config: %s[%d] is empty", field, i)
		}
	}
	return nil
}
