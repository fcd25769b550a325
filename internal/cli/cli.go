// Package cli implements the client commands of the tresor binary: the
// twins of the `az keyvault` commands that concern Managed HSM, with the
// same flags and the same JSON output, and Tresor's own login, account and
// principal commands. It is a client of package client only.
//
// [Main] (or [Run], for tests that give the environment explicitly) builds
// the command tree, adds the commands it is handed (the `tresor server`
// command lives in package server), runs it and returns the exit code:
// 0 on success, 1 for usage and local errors, 2 when the server answered
// with an error. Errors go to stderr as "tresor: error: <code>: <message>",
// optionally followed by "tresor: hint: …" lines.
//
// # Configuration
//
// Commands find the region and the credentials in the environment
// (TRESOR_SERVER, TRESOR_CA_FILE, TRESOR_TENANT_ID, TRESOR_CLIENT_ID,
// TRESOR_CLIENT_SECRET, TRESOR_SUBSCRIPTION_ID; or TRESOR_ACCESS_TOKEN, a
// bearer token of a trusted external issuer, and TRESOR_HSM_ACCESS_TOKEN
// when its HSM endpoints take another audience), then in the profile that
// `tresor login` writes to $TRESOR_CONFIG_DIR/profile.json (default
// ~/.tresor). The profile holds tokens and their expiry, never the secret.
//
// # Output
//
// Like az: -o json (default; pretty-printed, keys sorted), -o table,
// -o tsv, -o none, and --query with a JMESPath expression applied before
// formatting.
package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

// Exit codes of [Run].
const (
	ExitOK          = 0
	ExitLocalError  = 1 // usage errors and errors on the client's side
	ExitServerError = 2 // the server answered with an error
)

// Env is the process environment a command run sees.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up an environment variable; nil means none is set.
	Getenv func(string) string
}

func (e Env) getenv(key string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(key)
}

// Main runs the tresor command line args (without the program name) in the
// process's environment and returns the exit code. extra commands (such as
// `tresor server`) are added to the root command.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, extra ...*cobra.Command) int {
	return Run(ctx, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}, args, extra...)
}

// Run is [Main] with the environment given explicitly, for tests.
func Run(ctx context.Context, env Env, args []string, extra ...*cobra.Command) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	a := &app{env: env}
	root := a.rootCommand()
	root.AddCommand(extra...)
	root.SetArgs(expandArgs(root, args))
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	return a.report(err)
}

// app holds what a run's commands share: the environment and the global flags.
type app struct {
	env          Env
	output       string
	query        string
	subscription string
	compiled     *query // --query, compiled before the command runs
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tresor",
		Short: "Tresor: a self-hosted Azure Key Vault Managed HSM",
		Long: `Tresor is a self-hosted Azure Key Vault Managed HSM.

Each 'az keyvault' command that concerns Managed HSM has a 'tresor' twin with
the same flags and the same JSON output. Sign in with 'tresor login', or set
TRESOR_SERVER, TRESOR_CA_FILE, TRESOR_CLIENT_ID and TRESOR_CLIENT_SECRET
(or TRESOR_ACCESS_TOKEN: a token of an issuer the region trusts).`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.preRun,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err: err, cmd: c.CommandPath()}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.output, "output", "o", "json", "output format: json, table, tsv or none")
	pf.StringVar(&a.query, "query", "", "JMESPath query applied to the output, like az (https://jmespath.org)")
	pf.StringVar(&a.subscription, "subscription", "", "subscription id (default: TRESOR_SUBSCRIPTION_ID, the login profile's, or the region's)")
	root.AddCommand(
		a.loginCommand(),
		a.logoutCommand(),
		a.accountCommand(),
		a.principalCommand(),
		a.clusterCommand(),
	)
	root.AddCommand(a.hsmCommands()...)
	root.AddCommand(a.roleCommand())
	root.AddCommand(a.settingCommand())
	root.AddCommand(a.securityDomainCommand())
	root.AddCommand(a.keyCommand())
	root.AddCommand(a.backupCommand(), a.restoreCommand())
	root.AddCommand(a.auditCommand())
	root.AddCommand(a.benchCommand())
	return root
}

// preRun validates the global flags before any command runs.
func (a *app) preRun(cmd *cobra.Command, _ []string) error {
	switch strings.ToLower(a.output) {
	case "json", "table", "tsv", "none":
		a.output = strings.ToLower(a.output)
	default:
		return usageError{err: fmt.Errorf("invalid --output %q: choose json, table, tsv or none", a.output), cmd: cmd.CommandPath()}
	}
	if a.query != "" {
		q, err := compileQuery(a.query)
		if err != nil {
			return usageError{err: err, cmd: cmd.CommandPath()}
		}
		a.compiled = q
	}
	return nil
}

// usageError is a mistake in the command line.
type usageError struct {
	err error
	cmd string
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError for cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...), cmd: cmd.CommandPath()}
}

// hintError adds a hint line to an error.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error { return hintError{err: err, hint: hint} }

// report prints err to stderr and returns the exit code.
func (a *app) report(err error) int {
	w := a.env.Stderr
	code := ExitLocalError
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(w, "tresor: error: %s: %s\n", ce.Code, oneLine(ce.Message))
		code = ExitServerError
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(w, "tresor: error: interrupted")
	default:
		fmt.Fprintf(w, "tresor: error: %s\n", oneLine(err.Error()))
	}
	for _, h := range hints(err) {
		fmt.Fprintf(w, "tresor: hint: %s\n", h)
	}
	return code
}

// hints returns the hint lines for err.
func hints(err error) []string {
	var out []string
	var he hintError
	if errors.As(err, &he) {
		out = append(out, he.hint)
	}
	var ue usageError
	var ce *client.Error
	var ua x509.UnknownAuthorityError
	var ne *net.OpError
	switch {
	case errors.As(err, &ue):
		out = append(out, fmt.Sprintf("see '%s --help'", ue.cmd))
	case errors.Is(err, client.ErrNoCredentials):
		out = append(out, "run 'tresor login', or set TRESOR_CLIENT_ID and TRESOR_CLIENT_SECRET")
	case errors.As(err, &ce) && ce.Status == 401:
		out = append(out, "check the credentials, or run 'tresor login' again")
	case errors.As(err, &ua):
		out = append(out, "the server's certificate is not trusted: set TRESOR_CA_FILE (or 'tresor login --ca-file') to the region's CA certificate")
	case errors.As(err, &ne) && ne.Op == "dial":
		out = append(out, "is a Tresor server running there? check TRESOR_SERVER or 'tresor login --server'")
	}
	return out
}

// oneLine keeps a message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
