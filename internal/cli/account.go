package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

func (a *app) accountCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Show who you are signed in as, or get an access token",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.clientCommand(&cobra.Command{
		Use:   "show",
		Short: "Show the signed-in principal (object id, client id, tenant, region)",
	}, nil, nil,
		func(ctx context.Context, c *client.Client) (any, error) { return c.Account(ctx) }))
	cmd.AddCommand(a.getAccessTokenCommand())
	return cmd
}

// accessToken is the output of `az account get-access-token`.
type accessToken struct {
	AccessToken  string `json:"accessToken"`
	ExpiresOn    string `json:"expiresOn"`  // local time, "2006-01-02 15:04:05.000000"
	ExpiresOnSec int64  `json:"expires_on"` // unix seconds
	Subscription string `json:"subscription"`
	Tenant       string `json:"tenant"`
	TokenType    string `json:"tokenType"`
}

func (a *app) getAccessTokenCommand() *cobra.Command {
	var resource, scope string
	cmd := a.clientCommand(&cobra.Command{
		Use:   "get-access-token",
		Short: "Get an access token for the control plane or the HSMs",
		Long: `Get an access token of the signed-in principal, like 'az account get-access-token',
for scripts and curl: by default for the region's control plane; --resource (or
--scope, the resource followed by /.default) names another audience, such as the
HSMs' resource (the challenge's resource, e.g. https://managedhsm.localhost:8443).
The token is printed: treat the output as a secret.`,
		Example: `  curl -H "Authorization: Bearer $(tresor account get-access-token --query accessToken -o tsv)" …
  tresor account get-access-token --resource https://managedhsm.localhost:8443`,
	}, nil,
		func(cmd *cobra.Command) error {
			if resource != "" && scope != "" {
				return usagef(cmd, "give --resource or --scope, not both")
			}
			if scope != "" {
				r, ok := strings.CutSuffix(scope, "/.default")
				if !ok || r == "" {
					return usagef(cmd, "--scope %q: must be a resource followed by /.default", scope)
				}
				resource = r
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			res := resource
			if res == "" {
				r, err := c.ManagementResource(ctx)
				if err != nil {
					return nil, err
				}
				res = r
			}
			tok, err := c.Token(ctx, res)
			if err != nil {
				return nil, err
			}
			sub, err := c.Subscription(ctx)
			if err != nil {
				return nil, err
			}
			tenant := client.TokenTenant(tok.Token)
			if tenant == "" {
				if tenant, err = c.Tenant(ctx); err != nil {
					return nil, err
				}
			}
			out := accessToken{AccessToken: tok.Token, Subscription: sub, Tenant: tenant, TokenType: "Bearer"}
			if !tok.ExpiresOn.IsZero() {
				exp := time.Unix(tok.ExpiresOn.Unix(), 0) // whole seconds, as expires_on
				out.ExpiresOn = exp.Local().Format("2006-01-02 15:04:05.000000")
				out.ExpiresOnSec = exp.Unix()
			}
			return out, nil
		})
	f := cmd.Flags()
	f.StringVar(&resource, "resource", "", "audience of the token (default: the region's control plane)")
	f.StringVar(&scope, "scope", "", "scope of the token: a resource followed by /.default")
	return cmd
}
