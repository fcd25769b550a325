package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmespath/go-jmespath"
	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// hsmCommands returns the twins of `az keyvault create|show|list|update-hsm|
// delete|list-deleted|show-deleted|recover|purge|check-name|wait-hsm` for
// managed HSMs.
func (a *app) hsmCommands() []*cobra.Command {
	return []*cobra.Command{
		a.createCommand(),
		a.showCommand(),
		a.listCommand(),
		a.updateCommand(),
		a.deleteCommand(),
		a.listDeletedCommand(),
		a.showDeletedCommand(),
		a.recoverCommand(),
		a.purgeCommand(),
		a.checkNameCommand(),
		a.waitHSMCommand(),
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
		tagMap                  map[string]string
		setPurgeProtection      *bool // --enable-purge-protection, if given
	)
	cmd := a.clientCommand(&cobra.Command{
		Use:   "create",
		Short: "Create a managed HSM",
		Long: `Create a managed HSM, like 'az keyvault create --hsm-name'. The HSM starts
NotActivated: download its security domain to activate it.`,
		Example: `  tresor create --hsm-name ContosoMHSM --resource-group ContosoRG --location local \
    --administrators $(tresor account show --query objectId -o tsv) --retention-days 7`,
	}, hsmTable,
		func(cmd *cobra.Command) (err error) {
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
			if tagMap, err = parseTags(tags); err != nil {
				return usagef(cmd, "--tags: %v", err)
			}
			if cmd.Flags().Changed("enable-purge-protection") {
				setPurgeProtection = &purgeProtection
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			if location == "" {
				r, err := c.Region(ctx)
				if err != nil {
					return nil, err
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
					EnablePurgeProtection:     setPurgeProtection,
					CreateMode:                "default",
				},
			}
			_, op, err := c.BeginCreateHSM(ctx, rg, name, body)
			if err := a.waitUnless(ctx, noWait, op, err, "Creating "+name); err != nil || noWait {
				return nil, err
			}
			return c.GetHSM(ctx, rg, name)
		})
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

// waitUnless waits for op, unless noWait or err (what began op returned);
// it returns err or what waiting returns.
func (a *app) waitUnless(ctx context.Context, noWait bool, op *client.Operation, err error, what string) error {
	if err != nil || noWait {
		return err
	}
	return a.wait(ctx, op, what)
}

// onNamedHSM completes cmd, an ARM command on the HSM that --hsm-name/-n
// names (which it adds and requires), as [app.clientCommand].
func (a *app) onNamedHSM(cmd *cobra.Command, name *string, table tableFunc, check func(cmd *cobra.Command) error, call callFunc) *cobra.Command {
	hsmNameFlag(cmd, name)
	return a.clientCommand(cmd, table, func(cmd *cobra.Command) error {
		if err := requireHSMName(cmd, *name); err != nil {
			return err
		}
		if check != nil {
			return check(cmd)
		}
		return nil
	}, call)
}

func (a *app) showCommand() *cobra.Command {
	var name, rg string
	cmd := a.onNamedHSM(&cobra.Command{
		Use:   "show",
		Short: "Show a managed HSM",
	}, &name, hsmTable, nil,
		func(ctx context.Context, c *client.Client) (any, error) {
			if rg == "" {
				return c.FindHSM(ctx, name)
			}
			return c.GetHSM(ctx, rg, name)
		})
	resourceGroupFlag(cmd, &rg, "resource group (default: find the HSM in the subscription)")
	return cmd
}

func (a *app) listCommand() *cobra.Command {
	var rg, resourceType string
	cmd := a.clientCommand(&cobra.Command{
		Use:   "list",
		Short: "List managed HSMs of the subscription or of a resource group",
	}, hsmTable,
		func(cmd *cobra.Command) error { return checkResourceType(cmd, resourceType) },
		func(ctx context.Context, c *client.Client) (any, error) { return c.ListHSMs(ctx, rg) })
	resourceGroupFlag(cmd, &rg, "resource group (default: the whole subscription)")
	resourceTypeFlag(cmd, &resourceType)
	return cmd
}

func (a *app) updateCommand() *cobra.Command {
	var (
		name, rg        string
		tags            []string
		purgeProtection bool
		patch           wire.ManagedHSMPatch
	)
	cmd := a.onNamedHSM(&cobra.Command{
		Use:     "update",
		Aliases: []string{"update-hsm"},
		Short:   "Update a managed HSM's tags or purge protection",
	}, &name, hsmTable,
		func(cmd *cobra.Command) error {
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
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			rg, name, err := resolveRG(ctx, c, rg, name)
			if err != nil {
				return nil, err
			}
			return c.UpdateHSM(ctx, rg, name, patch)
		})
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
	cmd := a.onNamedHSM(&cobra.Command{
		Use:   "delete",
		Short: "Delete a managed HSM (softly: recover or purge it later)",
	}, &name, nil, nil,
		func(ctx context.Context, c *client.Client) (any, error) {
			rg, name, err := resolveRG(ctx, c, rg, name)
			if err != nil {
				return nil, err
			}
			op, err := c.BeginDeleteHSM(ctx, rg, name)
			return nil, a.waitUnless(ctx, noWait, op, err, "Deleting "+name)
		})
	resourceGroupFlag(cmd, &rg, "resource group (default: find the HSM in the subscription)")
	noWaitFlag(cmd, &noWait)
	return cmd
}

func (a *app) listDeletedCommand() *cobra.Command {
	var resourceType string
	cmd := a.clientCommand(&cobra.Command{
		Use:   "list-deleted",
		Short: "List soft-deleted managed HSMs",
	}, deletedTable,
		func(cmd *cobra.Command) error { return checkResourceType(cmd, resourceType) },
		func(ctx context.Context, c *client.Client) (any, error) { return c.ListDeletedHSMs(ctx) })
	resourceTypeFlag(cmd, &resourceType)
	return cmd
}

func (a *app) showDeletedCommand() *cobra.Command {
	var name, location string
	cmd := a.onNamedHSM(&cobra.Command{
		Use:   "show-deleted",
		Short: "Show a soft-deleted managed HSM",
	}, &name, deletedTable, nil,
		func(ctx context.Context, c *client.Client) (any, error) { return c.GetDeletedHSM(ctx, location, name) })
	cmd.Flags().StringVarP(&location, "location", "l", "", "location of the deleted HSM (default: find it by name)")
	return cmd
}

func (a *app) checkNameCommand() *cobra.Command {
	var name, resourceType string
	cmd := a.clientCommand(&cobra.Command{
		Use:   "check-name",
		Short: "Check that a managed HSM name is valid and not in use",
		Long: `Check that a managed HSM name is valid and held by no HSM of the region, live
or soft-deleted, like 'az keyvault check-name --resource-type hsm'.`,
	}, nil,
		func(cmd *cobra.Command) error {
			if name == "" {
				return usagef(cmd, "--name is required")
			}
			return checkResourceType(cmd, resourceType)
		},
		func(ctx context.Context, c *client.Client) (any, error) { return c.CheckHSMName(ctx, name) })
	cmd.Flags().StringVarP(&name, "name", "n", "", "the name to check (required)")
	resourceTypeFlag(cmd, &resourceType)
	return cmd
}

func (a *app) waitHSMCommand() *cobra.Command {
	var (
		name, rg, custom                  string
		created, updated, deleted, exists bool
		interval, timeout                 int
		cond                              func(h map[string]any) bool
	)
	cmd := a.onNamedHSM(&cobra.Command{
		Use:   "wait-hsm",
		Short: "Wait until a managed HSM meets a condition",
		Long: `Wait until a managed HSM meets a condition, like 'az keyvault wait-hsm': give
exactly one of --created, --updated, --deleted, --exists or --custom (a JMESPath
query on the HSM, met when its result is neither null, false nor empty).
It checks every --interval seconds and fails after --timeout seconds.`,
		Example: `  tresor wait-hsm --hsm-name ContosoMHSM --resource-group ContosoRG --created
  tresor wait-hsm -n ContosoMHSM -g ContosoRG --custom "properties.securityDomainProperties.activationStatus=='Active'"`,
	}, &name, nil,
		func(cmd *cobra.Command) error {
			n := 0
			for _, b := range []bool{created, updated, deleted, exists, custom != ""} {
				if b {
					n++
				}
			}
			if n != 1 {
				return usagef(cmd, "give exactly one of --created, --updated, --deleted, --exists or --custom")
			}
			if interval < 1 || timeout < 1 {
				return usagef(cmd, "--interval and --timeout must be at least 1 second")
			}
			succeeded := func(h map[string]any) bool {
				return h != nil && dig(h, "properties", "provisioningState") == "Succeeded"
			}
			switch {
			case created, updated:
				cond = succeeded
			case exists:
				cond = func(h map[string]any) bool { return h != nil }
			case deleted:
				cond = func(h map[string]any) bool { return h == nil }
			default:
				jp, err := jmespath.Compile(custom)
				if err != nil {
					return usagef(cmd, "--custom %q: %v", custom, err)
				}
				cond = func(h map[string]any) bool {
					if h == nil {
						return false
					}
					v, err := jp.Search(h)
					return err == nil && truthy(v)
				}
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			deadline := time.Now().Add(time.Duration(timeout) * time.Second)
			every := time.Duration(interval) * time.Second
			for {
				h, err := getHSMOrNil(ctx, c, rg, name)
				if err != nil {
					return nil, err
				}
				if cond(h) {
					return nil, nil
				}
				if time.Now().Add(every).After(deadline) {
					return nil, fmt.Errorf("wait-hsm: the managed HSM '%s' did not meet the condition within %ds", name, timeout)
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(every):
				}
			}
		})
	resourceGroupFlag(cmd, &rg, "resource group (default: find the HSM in the subscription)")
	f := cmd.Flags()
	f.BoolVar(&created, "created", false, "wait until the HSM is created (provisioningState Succeeded)")
	f.BoolVar(&updated, "updated", false, "wait until the HSM is updated (provisioningState Succeeded)")
	f.BoolVar(&deleted, "deleted", false, "wait until the HSM is deleted")
	f.BoolVar(&exists, "exists", false, "wait until the HSM exists")
	f.StringVar(&custom, "custom", "", "wait until this JMESPath query on the HSM is met")
	f.IntVar(&interval, "interval", 30, "seconds between checks")
	f.IntVar(&timeout, "timeout", 3600, "seconds to wait in all")
	return cmd
}

// getHSMOrNil returns the HSM as generic JSON, or nil if there is none.
func getHSMOrNil(ctx context.Context, c *client.Client, rg, name string) (map[string]any, error) {
	var h *wire.ManagedHSM
	var err error
	if rg == "" {
		h, err = c.FindHSM(ctx, name)
	} else {
		h, err = c.GetHSM(ctx, rg, name)
	}
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	g, err := toGeneric(h)
	if err != nil {
		return nil, err
	}
	m, _ := toFloats(g).(map[string]any)
	return m, nil
}

// truthy is JMESPath's truth: not null, false, "", [] nor {}.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// deletedHSMCommand returns recover or purge: a command on the deleted HSM
// that --hsm-name names, in --location; call returns the operation it began
// and what to print when it has ended.
func (a *app) deletedHSMCommand(use, short, doing string, call func(ctx context.Context, c *client.Client, location, name string) (*client.Operation, callFunc, error)) *cobra.Command {
	var name, location string
	var noWait bool
	cmd := a.onNamedHSM(&cobra.Command{Use: use, Short: short}, &name, hsmTable, nil,
		func(ctx context.Context, c *client.Client) (any, error) {
			op, then, err := call(ctx, c, location, name)
			if err := a.waitUnless(ctx, noWait, op, err, doing+" "+name); err != nil || noWait {
				return nil, err
			}
			return then(ctx, c)
		})
	cmd.Flags().StringVarP(&location, "location", "l", "", "location of the deleted HSM (default: find it by name)")
	noWaitFlag(cmd, &noWait)
	return cmd
}

func (a *app) recoverCommand() *cobra.Command {
	return a.deletedHSMCommand("recover", "Recover a soft-deleted managed HSM into its resource group", "Recovering",
		func(ctx context.Context, c *client.Client, location, name string) (*client.Operation, callFunc, error) {
			first, op, err := c.BeginRecoverHSM(ctx, location, name)
			return op, func(ctx context.Context, c *client.Client) (any, error) {
				if rg := client.ResourceGroup(first.ID); rg != "" {
					return c.GetHSM(ctx, rg, first.Name)
				}
				return c.FindHSM(ctx, name)
			}, err
		})
}

func (a *app) purgeCommand() *cobra.Command {
	return a.deletedHSMCommand("purge", "Purge a soft-deleted managed HSM for good", "Purging",
		func(ctx context.Context, c *client.Client, location, name string) (*client.Operation, callFunc, error) {
			op, err := c.BeginPurgeHSM(ctx, location, name)
			return op, func(context.Context, *client.Client) (any, error) { return nil, nil }, err
		})
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
