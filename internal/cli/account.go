package cli

import (
	"context"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

func (a *app) accountCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Show who you are signed in as",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.clientCommand(&cobra.Command{
		Use:   "show",
		Short: "Show the signed-in principal (object id, client id, tenant, region)",
	}, nil, nil,
		func(ctx context.Context, c *client.Client) (any, error) { return c.Account(ctx) }))
	return cmd
}
