package cli

import (
	"context"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

func (a *app) principalCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "principal",
		Short: "Manage the region's service principals",
		Args:  cobra.NoArgs,
	}
	var displayName string
	var regionAdmin bool
	create := a.clientCommand(&cobra.Command{
		Use:   "create",
		Short: "Create a service principal; its client secret is shown only this once",
	}, nil,
		func(cmd *cobra.Command) error {
			if displayName == "" {
				return usagef(cmd, "--display-name is required")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			return c.CreatePrincipal(ctx, wire.PrincipalCreate{DisplayName: displayName, RegionAdmin: regionAdmin})
		})
	create.Flags().StringVar(&displayName, "display-name", "", "the principal's display name (required)")
	create.Flags().BoolVar(&regionAdmin, "region-admin", false, "let the principal manage the region (HSMs, principals)")

	list := a.clientCommand(&cobra.Command{
		Use:   "list",
		Short: "List service principals",
	}, nil, nil,
		func(ctx context.Context, c *client.Client) (any, error) { return c.ListPrincipals(ctx) })

	var id string
	del := a.clientCommand(&cobra.Command{
		Use:   "delete",
		Short: "Delete a service principal",
	}, nil,
		func(cmd *cobra.Command) error {
			if id == "" {
				return usagef(cmd, "--id is required")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) { return c.DeletePrincipal(ctx, id) })
	del.Flags().StringVar(&id, "id", "", "the principal's object id (required)")

	cmd.AddCommand(create, list, del)
	return cmd
}
