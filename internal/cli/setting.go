package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// The twins of `az keyvault setting list|show|update` (spec §5.4).

// settingOut is a setting as az prints it.
type settingOut struct {
	Name        string `json:"name"`
	SettingType string `json:"settingType"`
	Value       string `json:"value"`
}

func toSettingOut(s wire.Setting) settingOut {
	return settingOut{Name: s.Name, SettingType: s.Type, Value: s.Value}
}

// settingOutput is what a command prints for the setting a call returned
// with err.
func settingOutput(s *wire.Setting, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return toSettingOut(*s), nil
}

func (a *app) settingCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setting",
		Short: "Show and change a managed HSM's settings",
		Args:  cobra.NoArgs,
	}
	var lh hsmTarget
	list := a.onHSM(&cobra.Command{
		Use:   "list",
		Short: "List the managed HSM's settings",
	}, &lh, nil, nil,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			all, err := c.ListSettings(ctx, hsmURL)
			return listOf(all, toSettingOut), err
		})

	var sh hsmTarget
	var showName string
	show := a.onHSM(&cobra.Command{
		Use:     "show",
		Short:   "Show one setting",
		Example: "  tresor setting show --hsm-name ContosoMHSM --name AllowKeyManagementOperationsThroughARM",
	}, &sh, nil,
		func(cmd *cobra.Command) error {
			if showName == "" {
				return usagef(cmd, "--name is required")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return settingOutput(c.GetSetting(ctx, hsmURL, showName))
		})
	show.Flags().StringVarP(&showName, "name", "n", "", "name of the setting (required)")

	var uh hsmTarget
	var updName, value, typ string
	update := a.onHSM(&cobra.Command{
		Use:     "update",
		Short:   "Change one setting",
		Example: "  tresor setting update --hsm-name ContosoMHSM --name AllowKeyManagementOperationsThroughARM --value true",
	}, &uh, nil,
		func(cmd *cobra.Command) error {
			if updName == "" || !cmd.Flags().Changed("value") {
				return usagef(cmd, "--name and --value are required")
			}
			if typ != "" && !strings.EqualFold(typ, "boolean") {
				return usagef(cmd, "--type %q: the only setting type is boolean", typ)
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return settingOutput(c.UpdateSetting(ctx, hsmURL, updName, value))
		})
	update.Flags().StringVarP(&updName, "name", "n", "", "name of the setting (required)")
	update.Flags().StringVar(&value, "value", "", "the new value, e.g. true or false (required)")
	update.Flags().StringVar(&typ, "type", "", "type of the value: boolean (optional)")

	cmd.AddCommand(list, show, update)
	return cmd
}
