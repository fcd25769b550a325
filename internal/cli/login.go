package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

// loginAccount is an entry of what `tresor login` prints, in the shape of
// `az login`'s output.
type loginAccount struct {
	EnvironmentName string    `json:"environmentName"`
	ID              string    `json:"id"`
	IsDefault       bool      `json:"isDefault"`
	Name            string    `json:"name"`
	State           string    `json:"state"`
	TenantID        string    `json:"tenantId"`
	User            loginUser `json:"user"`
}

type loginUser struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (a *app) loginCommand() *cobra.Command {
	var (
		servicePrincipal                           bool
		username, password, tenant, server, caFile string
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a region with a service principal",
		Long: `Sign in to a region with a service principal's client id and secret, like
'az login --service-principal'. The credentials are checked by getting
tokens, which are kept with their expiry in $TRESOR_CONFIG_DIR/profile.json
(default ~/.tresor/profile.json, mode 0600); the secret is not kept. Later
commands use the profile until its tokens expire.`,
		Example: `  tresor login --service-principal -u <clientId> -p <secret> --tenant <tenantId> \
    --server https://127.0.0.1:8443 --ca-file ./data/ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !servicePrincipal {
				return usagef(cmd, "only service principals can sign in: give --service-principal")
			}
			if username == "" {
				username = a.env.getenv(envClientID)
			}
			if password == "" {
				password = a.env.getenv(envClientSecret)
			}
			if tenant == "" {
				tenant = a.env.getenv(envTenantID)
			}
			if username == "" || password == "" {
				return usagef(cmd, "--username and --password are required (or TRESOR_CLIENT_ID and TRESOR_CLIENT_SECRET)")
			}
			prof, _ := a.loadProfile() // a broken profile is about to be replaced
			if server == "" {
				server = a.env.getenv(envServer)
			}
			if server == "" && prof != nil {
				server = prof.Server
			}
			if server == "" {
				return usagef(cmd, "--server is required (or TRESOR_SERVER)")
			}
			if caFile == "" {
				caFile = a.env.getenv(envCAFile)
			}
			if caFile == "" && prof != nil && sameServer(prof.Server, server) {
				caFile = prof.CAFile
			}
			if caFile != "" {
				abs, err := filepath.Abs(caFile)
				if err != nil {
					return err
				}
				caFile = abs
			}
			sub := a.subscription
			if sub == "" {
				sub = a.env.getenv(envSubscription)
			}
			c, err := client.New(client.Config{
				Server: server, CAFile: caFile, TenantID: tenant,
				ClientID: username, ClientSecret: password, Subscription: sub,
			})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			region, err := c.Region(ctx)
			if err != nil {
				return err
			}
			if tenant == "" {
				tenant = region.TenantID
			}
			if _, err := c.ManagementToken(ctx); err != nil {
				return err
			}
			if _, err := c.HSMToken(ctx); err != nil {
				return err
			}
			subs, err := c.Subscriptions(ctx)
			if err != nil {
				return err
			}
			if sub == "" {
				sub = region.SubscriptionID
			}
			if sub == "" && len(subs) > 0 {
				sub = subs[0].SubscriptionID
			}
			name := sub
			for _, s := range subs {
				if s.SubscriptionID == sub && s.DisplayName != "" {
					name = s.DisplayName
				}
			}
			err = a.saveProfile(&profile{
				Server:         c.Server(),
				CAFile:         caFile,
				TenantID:       tenant,
				ClientID:       username,
				SubscriptionID: sub,
				Tokens:         c.Tokens(),
			})
			if err != nil {
				return err
			}
			return a.print([]loginAccount{{
				EnvironmentName: "tresor",
				ID:              sub,
				IsDefault:       true,
				Name:            name,
				State:           "Enabled",
				TenantID:        tenant,
				User:            loginUser{Name: username, Type: "servicePrincipal"},
			}}, nil)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&servicePrincipal, "service-principal", false, "sign in with a service principal (required)")
	f.StringVarP(&username, "username", "u", "", "the service principal's client id (default TRESOR_CLIENT_ID)")
	f.StringVarP(&password, "password", "p", "", "the service principal's client secret (default TRESOR_CLIENT_SECRET)")
	f.StringVarP(&tenant, "tenant", "t", "", "tenant id (default TRESOR_TENANT_ID, or the region's)")
	f.StringVar(&server, "server", "", "region endpoint, e.g. https://127.0.0.1:8443 (default TRESOR_SERVER)")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the region's CA certificate (default TRESOR_CA_FILE; none: the system's roots)")
	return cmd
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the login profile and its tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.configDir()
			if err != nil {
				return err
			}
			err = os.Remove(filepath.Join(dir, profileName))
			if errors.Is(err, fs.ErrNotExist) {
				return errors.New("not logged in: there is no login profile")
			}
			if err != nil {
				return fmt.Errorf("removing login profile: %w", err)
			}
			return nil
		},
	}
}
