package cli

import (
	"github.com/spf13/cobra"

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
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a service principal; its client secret is shown only this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if displayName == "" {
				return usagef(cmd, "--display-name is required")
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			p, err := c.CreatePrincipal(cmd.Context(), wire.PrincipalCreate{DisplayName: displayName, RegionAdmin: regionAdmin})
			if err != nil {
				return err
			}
			return a.print(p, nil)
		},
	}
	create.Flags().StringVar(&displayName, "display-name", "", "the principal's display name (required)")
	create.Flags().BoolVar(&regionAdmin, "region-admin", false, "let the principal manage the region (HSMs, principals)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List service principals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ps, err := c.ListPrincipals(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(ps, nil)
		},
	}

	var id string
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usagef(cmd, "--id is required")
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			p, err := c.DeletePrincipal(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.print(p, nil)
		},
	}
	del.Flags().StringVar(&id, "id", "", "the principal's object id (required)")

	cmd.AddCommand(create, list, del)
	return cmd
}
