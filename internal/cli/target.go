package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

// How commands run: check the flags, make a client, make the calls, print
// the result. The builders below do the common part; a command gives the
// flags it adds, what it checks and what it calls.

// callFunc is what a command does with a client once its flags are
// checked; it returns what to print (nil prints nothing, as az prints
// nothing for None).
type callFunc func(ctx context.Context, c *client.Client) (any, error)

// hsmCallFunc is a callFunc of a data-plane command, given the base URL of
// the HSM its flags name.
type hsmCallFunc func(ctx context.Context, c *client.Client, hsmURL string) (any, error)

// clientCommand completes cmd, which takes no arguments: its RunE runs
// check (if not nil), then makes a client, runs call and prints what call
// returns with table.
func (a *app) clientCommand(cmd *cobra.Command, table tableFunc, check func(cmd *cobra.Command) error, call callFunc) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if check != nil {
			if err := check(cmd); err != nil {
				return err
			}
		}
		c, err := a.newClient()
		if err != nil {
			return err
		}
		out, err := call(cmd.Context(), c)
		if err != nil || out == nil {
			return err
		}
		return a.print(out, table)
	}
	return cmd
}

// hsmNamer names the HSM of a data-plane command: an [hsmTarget], or a
// [keyRef], which names a key of it.
type hsmNamer interface {
	// check validates the flags before anything else happens.
	check(cmd *cobra.Command) error
	// url returns the HSM's base URL.
	url(ctx context.Context, c *client.Client) (string, error)
}

// hsmCommand is clientCommand for a data-plane command: it checks the
// flags of target before the command's own, and calls call with the URL of
// the HSM that target names.
func (a *app) hsmCommand(cmd *cobra.Command, target hsmNamer, table tableFunc, check func(cmd *cobra.Command) error, call hsmCallFunc) *cobra.Command {
	checkAll := func(cmd *cobra.Command) error {
		if err := target.check(cmd); err != nil {
			return err
		}
		if check != nil {
			return check(cmd)
		}
		return nil
	}
	return a.clientCommand(cmd, table, checkAll, func(ctx context.Context, c *client.Client) (any, error) {
		hsmURL, err := target.url(ctx, c)
		if err != nil {
			return nil, err
		}
		return call(ctx, c, hsmURL)
	})
}

// onHSM completes cmd, a command on the HSM that h names: it adds h's
// flags, then runs as [app.hsmCommand].
func (a *app) onHSM(cmd *cobra.Command, h *hsmTarget, table tableFunc, check func(cmd *cobra.Command) error, call hsmCallFunc) *cobra.Command {
	h.addFlags(cmd)
	return a.hsmCommand(cmd, h, table, check, call)
}

// Usage errors for --hsm-name given with --id: the key commands word it as
// az keyvault key does.
const (
	errHSMAndID    = "give --hsm-name or --id, not both"
	errHSMAndIDKey = "--hsm-name and --id are mutually exclusive."
)

// hsmTarget is the HSM a data-plane command talks to: --hsm-name or --id
// (the HSM's URI).
type hsmTarget struct {
	name, id string
	// short is the shorthand of --hsm-name: "n" in the security-domain
	// commands; elsewhere -n is --name (of a key, role or setting), as in az.
	short string
	// conflict is the usage error for both flags (default errHSMAndID).
	conflict string
}

// addFlags adds --hsm-name and --id.
func (t *hsmTarget) addFlags(cmd *cobra.Command) {
	hsmNameOrIDFlag(cmd, &t.name, t.short)
	cmd.Flags().StringVar(&t.id, "id", "", "full URI of the HSM, https://{name}.{dnsSuffix}[:port] (instead of --hsm-name)")
}

// hsmNameOrIDFlag adds --hsm-name of a data-plane command, which --id can
// replace.
func hsmNameOrIDFlag(cmd *cobra.Command, p *string, short string) {
	cmd.Flags().StringVarP(p, "hsm-name", short, "", "name of the managed HSM (required unless --id is given)")
}

func (t *hsmTarget) check(cmd *cobra.Command) error {
	switch {
	case t.name != "" && t.id != "":
		conflict := t.conflict
		if conflict == "" {
			conflict = errHSMAndID
		}
		return usagef(cmd, "%s", conflict)
	case t.name == "" && t.id == "":
		return usagef(cmd, "--hsm-name (or --id) is required")
	case t.id != "":
		if _, err := parseHSMID(t.id); err != nil {
			return usagef(cmd, "--id: %v", err)
		}
	}
	return nil
}

func (t *hsmTarget) url(ctx context.Context, c *client.Client) (string, error) {
	if t.id != "" {
		return parseHSMID(t.id)
	}
	return c.HSMURL(ctx, t.name)
}

// label names the HSM in progress messages.
func (t *hsmTarget) label() string {
	if t.name != "" {
		return t.name
	}
	return t.id
}

// flag is the flag that names the HSM, as a command line would give it.
func (t *hsmTarget) flag() string {
	if t.name != "" {
		return "--hsm-name " + t.name
	}
	return "--id " + t.id
}

// parseHSMID checks an --id and returns it as https://host[:port].
func parseHSMID(id string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(id))
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an HSM URI: want https://{name}.{dnsSuffix}[:port]", id)
	}
	return "https://" + u.Host, nil
}

// listOf applies f to each item; the result is never nil, so that an empty
// list prints as [].
func listOf[T, U any](items []T, f func(T) U) []U {
	out := make([]U, 0, len(items))
	for _, it := range items {
		out = append(out, f(it))
	}
	return out
}
