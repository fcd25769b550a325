package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// hsmCommands returns the twins of `az keyvault create|show|list|update-hsm|
// delete|list-deleted|recover|purge` for managed HSMs.
func (a *app) hsmCommands() []*cobra.Command {
	return []*cobra.Command{
		a.createCommand(),
		a.showCommand(),
		a.listCommand(),
		a.updateCommand(),
		a.deleteCommand(),
		a.listDeletedCommand(),
		a.recoverCommand(),
		a.purgeCommand(),
	}
}

func hsmNameFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "hsm-name", "n", "", "name of the managed HSM (required)")
}

func resourceGroupFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVarP(p, "resource-group", "g", "", usage)
}

func resourceTypeFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "resource-type", "", "only hsm: Tresor has no vaults")
}

func noWaitFlag(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "no-wait", false, "do not wait for the long-running operation to finish")
}

// checkResourceType accepts an empty --resource-type or "hsm".
func checkResourceType(cmd *cobra.Command, t string) error {
	if t != "" && !strings.EqualFold(t, "hsm") {
		return usagef(cmd, "--resource-type %q: Tresor only has managed HSMs (hsm)", t)
	}
	return nil
}

func requireHSMName(cmd *cobra.Command, name string) error {
	if name == "" {
		return usagef(cmd, "--hsm-name is required")
	}
	return nil
}

// resolveRG returns the resource group of HSM name: rg if given, else the
// group of the HSM of that name found in the subscription.
func resolveRG(ctx context.Context, c *client.Client, rg, name string) (string, string, error) {
	if rg != "" {
		return rg, name, nil
	}
	h, err := c.FindHSM(ctx, name)
	if err != nil {
		return "", "", err
	}
	return client.ResourceGroup(h.ID), h.Name, nil
}

func (a *app) createCommand() *cobra.Command {
	var (
		name, rg, location, sku string
		admins, tags            []string
		retention               int
		purgeProtection, noWait bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a managed HSM",
		Long: `Create a managed HSM, like 'az keyvault create --hsm-name'. The HSM starts
NotActivated: download its security domain to activate it.`,
		Example: `  tresor create --hsm-name ContosoMHSM --resource-group ContosoRG --location local \
    --administrators $(tresor account show --query objectId -o tsv) --retention-days 7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireHSMName(cmd, name); err != nil {
				return err
			}
			if rg == "" {
				return usagef(cmd, "--resource-group is required")
			}
			if len(admins) == 0 {
				return usagef(cmd, "--administrators is required: the object ids of the initial administrators")
			}
			if retention < 7 || retention > 90 {
				return usagef(cmd, "--retention-days %d: must be between 7 and 90", retention)
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return usagef(cmd, "--tags: %v", err)
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if location == "" {
				r, err := c.Region(ctx)
				if err != nil {
					return err
				}
				location = r.Region
			}
			soft := true
			body := wire.ManagedHSM{
				Location: location,
				SKU:      &wire.SKU{Family: "B", Name: sku},
				Tags:     tagMap,
				Properties: wire.ManagedHSMProps{
					InitialAdminObjectIDs:     admins,
					EnableSoftDelete:          &soft,
					SoftDeleteRetentionInDays: &retention,
					CreateMode:                "default",
				},
			}
			if cmd.Flags().Changed("enable-purge-protection") {
				body.Properties.EnablePurgeProtection = &purgeProtection
			}
			_, op, err := c.BeginCreateHSM(ctx, rg, name, body)
			if err != nil || noWait {
				return err
			}
			if err := a.wait(ctx, op, "Creating "+name); err != nil {
				return err
			}
			h, err := c.GetHSM(ctx, rg, name)
			if err != nil {
				return err
			}
			return a.print(h, hsmTable)
		},
	}
	hsmNameFlag(cmd, &name)
	resourceGroupFlag(cmd, &rg, "resource group of the new HSM (required)")
	f := cmd.Flags()
	f.StringVarP(&location, "location", "l", "", "location (default: the region's name)")
	f.StringSliceVar(&admins, "administrators", nil, "object ids of the initial administrators, space-separated (required)")
	f.IntVar(&retention, "retention-days", 90, "soft-delete retention in days, 7 to 90")
	optBoolVar(f, &purgeProtection, "enable-purge-protection", "forbid purging a deleted HSM before its retention ends")
	f.StringArrayVar(&tags, "tags", nil, `space-separated tags "key[=value]"`)
	f.StringVar(&sku, "sku", "Standard_B1", "SKU name")
	noWaitFlag(cmd, &noWait)
	markNargs(f, "administrators", "tags")
	return cmd
}

func (a *app) showCommand() *cobra.Command {
	var name, rg string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a managed HSM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireHSMName(cmd, name); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			var h *wire.ManagedHSM
			if rg == "" {
				h, err = c.FindHSM(cmd.Context(), name)
			} else {
				h, err = c.GetHSM(cmd.Context(), rg, name)
			}
			if err != nil {
				return err
			}
			return a.print(h, hsmTable)
		},
	}
	hsmNameFlag(cmd, &name)
	resourceGroupFlag(cmd, &rg, "resource group (default: find the HSM in the subscription)")
	return cmd
}

func (a *app) listCommand() *cobra.Command {
	var rg, resourceType string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List managed HSMs of the subscription or of a resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkResourceType(cmd, resourceType); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			hs, err := c.ListHSMs(cmd.Context(), rg)
			if err != nil {
				return err
			}
			return a.print(hs, hsmTable)
		},
	}
	resourceGroupFlag(cmd, &rg, "resource group (default: the whole subscription)")
	resourceTypeFlag(cmd, &resourceType)
	return cmd
}

func (a *app) updateCommand() *cobra.Command {
	var (
		name, rg        string
		tags            []string
		purgeProtection bool
	)
	cmd := &cobra.Command{
		Use:     "update",
		Aliases: []string{"update-hsm"},
		Short:   "Update a managed HSM's tags or purge protection",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireHSMName(cmd, name); err != nil {
				return err
			}
			var patch wire.ManagedHSMPatch
			if cmd.Flags().Changed("tags") {
				t, err := parseTags(tags)
				if err != nil {
					return usagef(cmd, "--tags: %v", err)
				}
				patch.Tags = t
			}
			if cmd.Flags().Changed("enable-purge-protection") {
				patch.Properties = &wire.ManagedHSMProps{EnablePurgeProtection: &purgeProtection}
			}
			if patch.Tags == nil && patch.Properties == nil {
				return usagef(cmd, "nothing to update: give --tags or --enable-purge-protection")
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rg, name, err := resolveRG(ctx, c, rg, name)
			if err != nil {
				return err
			}
			h, err := c.UpdateHSM(ctx, rg, name, patch)
			if err != nil {
				return err
			}
			return a.print(h, hsmTable)
		},
	}
	hsmNameFlag(cmd, &name)
	resourceGroupFlag(cmd, &rg, "resource group (default: find the HSM in the subscription)")
	f := cmd.Flags()
	optBoolVar(f, &purgeProtection, "enable-purge-protection", "forbid purging a deleted HSM before its retention ends; cannot be turned off")
	f.StringArrayVar(&tags, "tags", nil, `space-separated tags "key[=value]", replacing all; "" removes all`)
	markNargs(f, "tags")
	return cmd
}

func (a *app) deleteCommand() *cobra.Command {
	var name, rg string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a managed HSM (softly: recover or purge it later)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireHSMName(cmd, name); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rg, name, err := resolveRG(ctx, c, rg, name)
			if err != nil {
				return err
			}
			op, err := c.BeginDeleteHSM(ctx, rg, name)
			if err != nil || noWait {
				return err
			}
			return a.wait(ctx, op, "Deleting "+name)
		},
	}
	hsmNameFlag(cmd, &name)
	resourceGroupFlag(cmd, &rg, "resource group (default: find the HSM in the subscription)")
	noWaitFlag(cmd, &noWait)
	return cmd
}

func (a *app) listDeletedCommand() *cobra.Command {
	var resourceType string
	cmd := &cobra.Command{
		Use:   "list-deleted",
		Short: "List soft-deleted managed HSMs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkResourceType(cmd, resourceType); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ds, err := c.ListDeletedHSMs(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(ds, deletedTable)
		},
	}
	resourceTypeFlag(cmd, &resourceType)
	return cmd
}

func (a *app) recoverCommand() *cobra.Command {
	var name, location string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Recover a soft-deleted managed HSM into its resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireHSMName(cmd, name); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			first, op, err := c.BeginRecoverHSM(ctx, location, name)
			if err != nil || noWait {
				return err
			}
			if err := a.wait(ctx, op, "Recovering "+name); err != nil {
				return err
			}
			var h *wire.ManagedHSM
			if rg := client.ResourceGroup(first.ID); rg != "" {
				h, err = c.GetHSM(ctx, rg, first.Name)
			} else {
				h, err = c.FindHSM(ctx, name)
			}
			if err != nil {
				return err
			}
			return a.print(h, hsmTable)
		},
	}
	hsmNameFlag(cmd, &name)
	cmd.Flags().StringVarP(&location, "location", "l", "", "location of the deleted HSM (default: find it by name)")
	noWaitFlag(cmd, &noWait)
	return cmd
}

func (a *app) purgeCommand() *cobra.Command {
	var name, location string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Purge a soft-deleted managed HSM for good",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireHSMName(cmd, name); err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			op, err := c.BeginPurgeHSM(ctx, location, name)
			if err != nil || noWait {
				return err
			}
			return a.wait(ctx, op, "Purging "+name)
		},
	}
	hsmNameFlag(cmd, &name)
	cmd.Flags().StringVarP(&location, "location", "l", "", "location of the deleted HSM (default: find it by name)")
	noWaitFlag(cmd, &noWait)
	return cmd
}

// hsmTable is the -o table view of managed HSMs.
func hsmTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		return row{
			{"Name", m["name"]},
			{"ResourceGroup", m["resourceGroup"]},
			{"Location", m["location"]},
			{"ActivationStatus", dig(m, "properties", "securityDomainProperties", "activationStatus")},
			{"ProvisioningState", dig(m, "properties", "provisioningState")},
		}
	})
}

// deletedTable is the -o table view of deleted managed HSMs.
func deletedTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		return row{
			{"Name", m["name"]},
			{"Location", dig(m, "properties", "location")},
			{"DeletionDate", dig(m, "properties", "deletionDate")},
			{"ScheduledPurgeDate", dig(m, "properties", "scheduledPurgeDate")},
			{"PurgeProtectionEnabled", dig(m, "properties", "purgeProtectionEnabled")},
		}
	})
}

// mapRows applies f to an object or to each object of a list.
func mapRows(v any, f func(map[string]any) row) any {
	switch x := v.(type) {
	case map[string]any:
		return []row{f(x)}
	case []any:
		rows := make([]row, 0, len(x))
		for _, it := range x {
			m, ok := it.(map[string]any)
			if !ok {
				return v
			}
			rows = append(rows, f(m))
		}
		return rows
	}
	return v
}

// dig walks nested objects by keys.
func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = o[k]
	}
	return cur
}
