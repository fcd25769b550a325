package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

// The twins of `az keyvault setting list|show|update` (spec §5.4).

// settingOut is a setting as az prints it.
type settingOut struct {
	Name        string `json:"name"`
	SettingType string `json:"settingType"`
	Value       string `json:"value"`
}

func toSettingOut(s client.Setting) settingOut {
	return settingOut{Name: s.Name, SettingType: s.Type, Value: s.Value}
}

func (a *app) settingCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setting",
		Short: "Show and change a managed HSM's settings",
		Args:  cobra.NoArgs,
	}
	var lh dataPlaneHSM
	list := &cobra.Command{
		Use:   "list",
		Short: "List the managed HSM's settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lh.check(cmd); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			u, err := lh.url(cmd, c)
			if err != nil {
				return err
			}
			all, err := c.ListSettings(cmd.Context(), u)
			if err != nil {
				return err
			}
			out := []settingOut{}
			for _, s := range all {
				out = append(out, toSettingOut(s))
			}
			return a.print(out, nil)
		},
	}
	lh.addFlags(list)

	var sh dataPlaneHSM
	var showName string
	show := &cobra.Command{
		Use:     "show",
		Short:   "Show one setting",
		Example: "  tresor setting show --hsm-name ContosoMHSM --name AllowKeyManagementOperationsThroughARM",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sh.check(cmd); err != nil {
				return err
			}
			if showName == "" {
				return usagef(cmd, "--name is required")
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			u, err := sh.url(cmd, c)
			if err != nil {
				return err
			}
			s, err := c.GetSetting(cmd.Context(), u, showName)
			if err != nil {
				return err
			}
			return a.print(toSettingOut(*s), nil)
		},
	}
	sh.addFlags(show)
	show.Flags().StringVarP(&showName, "name", "n", "", "name of the setting (required)")

	var uh dataPlaneHSM
	var updName, value, typ string
	update := &cobra.Command{
		Use:     "update",
		Short:   "Change one setting",
		Example: "  tresor setting update --hsm-name ContosoMHSM --name AllowKeyManagementOperationsThroughARM --value true",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := uh.check(cmd); err != nil {
				return err
			}
			if updName == "" || !cmd.Flags().Changed("value") {
				return usagef(cmd, "--name and --value are required")
			}
			if typ != "" && !strings.EqualFold(typ, "boolean") {
				return usagef(cmd, "--type %q: the only setting type is boolean", typ)
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			u, err := uh.url(cmd, c)
			if err != nil {
				return err
			}
			s, err := c.UpdateSetting(cmd.Context(), u, updName, value)
			if err != nil {
				return err
			}
			return a.print(toSettingOut(*s), nil)
		},
	}
	uh.addFlags(update)
	update.Flags().StringVarP(&updName, "name", "n", "", "name of the setting (required)")
	update.Flags().StringVar(&value, "value", "", "the new value, e.g. true or false (required)")
	update.Flags().StringVar(&typ, "type", "", "type of the value: boolean (optional)")

	cmd.AddCommand(list, show, update)
	return cmd
}
