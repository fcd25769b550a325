// Command tresor is a self-hosted Azure Key Vault Managed HSM: `tresor
// server` runs a region, and every other command is a client of one.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"tresor/internal/cli"
	"tresor/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, server.Command(), server.SealCommand())
	stop()
	os.Exit(code)
}
