package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"tresor/internal/client"
)

// Environment variables the commands read.
const (
	envServer       = "TRESOR_SERVER"
	envCAFile       = "TRESOR_CA_FILE"
	envTenantID     = "TRESOR_TENANT_ID"
	envClientID     = "TRESOR_CLIENT_ID"
	envClientSecret = "TRESOR_CLIENT_SECRET"
	envSubscription = "TRESOR_SUBSCRIPTION_ID"
	envConfigDir    = "TRESOR_CONFIG_DIR"
	// envAccessToken is a bearer token from elsewhere (a trusted external
	// issuer, as with az's signed-in user): with it the CLI signs in as the
	// token's principal on both planes and ignores the login profile's
	// tokens and any client credentials.
	envAccessToken = "TRESOR_ACCESS_TOKEN"
	// envHSMAccessToken, with envAccessToken, is the token for the HSM
	// endpoints when the issuer gives each plane its own audience (as
	// Entra ID does); envAccessToken then serves the region endpoint.
	envHSMAccessToken = "TRESOR_HSM_ACCESS_TOKEN"
)

// profileName is the login profile's file name in the config directory.
const profileName = "profile.json"

// profile is what `tresor login` keeps: where the region is, who signed in
// and the tokens it got, never the client secret.
type profile struct {
	Server         string               `json:"server"`
	CAFile         string               `json:"caFile,omitempty"`
	TenantID       string               `json:"tenantId"`
	ClientID       string               `json:"clientId"`
	SubscriptionID string               `json:"subscriptionId,omitempty"`
	Tokens         []client.AccessToken `json:"tokens"`
}

// configDir returns TRESOR_CONFIG_DIR, or ~/.tresor.
func (a *app) configDir() (string, error) {
	if d := a.env.getenv(envConfigDir); d != "" {
		return d, nil
	}
	home := a.env.getenv("HOME")
	if runtime.GOOS == "windows" && home == "" {
		home = a.env.getenv("USERPROFILE")
	}
	if home == "" {
		return "", errors.New("cannot find the config directory: set TRESOR_CONFIG_DIR or HOME")
	}
	return filepath.Join(home, ".tresor"), nil
}

// loadProfile reads the login profile; nil without error if there is none.
func (a *app) loadProfile() (*profile, error) {
	dir, err := a.configDir()
	if err != nil {
		return nil, nil // no place for a profile: there is none
	}
	path := filepath.Join(dir, profileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading login profile: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p profile
	if err := dec.Decode(&p); err != nil {
		return nil, withHint(fmt.Errorf("reading login profile %s: %w", path, err), "run 'tresor login' to write it anew")
	}
	return &p, nil
}

// saveProfile writes the login profile, mode 0600 in a 0700 directory,
// atomically.
func (a *app) saveProfile(p *profile) error {
	dir, err := a.configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing login profile: %w", err)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".profile-*.json")
	if err != nil {
		return fmt.Errorf("writing login profile: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return fmt.Errorf("writing login profile: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing login profile: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing login profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing login profile: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, profileName)); err != nil {
		return fmt.Errorf("writing login profile: %w", err)
	}
	return nil
}

// sameServer compares two region endpoints.
func sameServer(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// clientConfig resolves the client configuration: the environment first,
// then the login profile (if it is for the same server and principal).
// TRESOR_ACCESS_TOKEN (with TRESOR_HSM_ACCESS_TOKEN for the HSM endpoints,
// when the issuer's planes have their own audiences), when set, is the only
// credential.
func (a *app) clientConfig() (client.Config, error) {
	prof, err := a.loadProfile()
	if err != nil {
		return client.Config{}, err
	}
	server := a.env.getenv(envServer)
	useProfile := prof != nil && (server == "" || sameServer(server, prof.Server))
	if server == "" && prof != nil {
		server = prof.Server
	}
	if server == "" {
		return client.Config{}, withHint(errors.New("no server: not logged in and TRESOR_SERVER is not set"),
			"run 'tresor login --service-principal -u <clientId> -p <secret> --tenant <tenant> --server <url>', or set TRESOR_SERVER")
	}
	cfg := client.Config{
		Server:       server,
		CAFile:       a.env.getenv(envCAFile),
		TenantID:     a.env.getenv(envTenantID),
		ClientID:     a.env.getenv(envClientID),
		ClientSecret: a.env.getenv(envClientSecret),
		Subscription: a.subscription,
	}
	if cfg.Subscription == "" {
		cfg.Subscription = a.env.getenv(envSubscription)
	}
	if useProfile {
		if cfg.CAFile == "" {
			cfg.CAFile = prof.CAFile
		}
		if cfg.Subscription == "" {
			cfg.Subscription = prof.SubscriptionID
		}
		if cfg.ClientID == "" || cfg.ClientID == prof.ClientID {
			if cfg.ClientID == "" {
				cfg.ClientID = prof.ClientID
			}
			if cfg.TenantID == "" {
				cfg.TenantID = prof.TenantID
			}
			cfg.Tokens = prof.Tokens
		}
	}
	hsmTok := strings.TrimSpace(a.env.getenv(envHSMAccessToken))
	if tok := strings.TrimSpace(a.env.getenv(envAccessToken)); tok != "" {
		cfg.Token, cfg.HSMToken, cfg.Tokens, cfg.ClientID, cfg.ClientSecret = tok, hsmTok, nil, "", ""
		return cfg, nil
	}
	if hsmTok != "" {
		return client.Config{}, errors.New("TRESOR_HSM_ACCESS_TOKEN is set but TRESOR_ACCESS_TOKEN is not (the token for the region endpoint)")
	}
	if cfg.ClientSecret != "" && cfg.ClientID == "" {
		return client.Config{}, errors.New("TRESOR_CLIENT_SECRET is set but TRESOR_CLIENT_ID is not")
	}
	return cfg, nil
}

// newClient returns a client configured by [app.clientConfig].
func (a *app) newClient() (*client.Client, error) {
	cfg, err := a.clientConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}
