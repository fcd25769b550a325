package server

import (
	"fmt"

	"github.com/spf13/cobra"

	"tresor/internal/barrier/pkcs11"
)

// SealCommand returns `tresor seal`: create-key (make the PKCS#11 seal
// key inside the token) and migrate (move a stopped region from the file
// seal to the PKCS#11 seal).
func SealCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Manage the region's seal (file or PKCS#11)",
		Long: `Manage the seal that wraps the region's root keys at rest.

The PKCS#11 seal needs a tresor built with -tags pkcs11 (cgo).`,
	}
	cmd.AddCommand(sealCreateKeyCommand(), sealMigrateCommand())
	return cmd
}

func pkcs11Flags(cmd *cobra.Command, c *pkcs11.Config) {
	f := cmd.Flags()
	f.StringVar(&c.Library, "library", "", "the token's PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)")
	f.StringVar(&c.TokenLabel, "token-label", "", "the token's label")
	f.StringVar(&c.PINFile, "pin-file", "", "file holding the user PIN (mode 0600)")
	f.StringVar(&c.KeyLabel, "key-label", "", "label of the AES-256 seal key in the token")
}

func sealCreateKeyCommand() *cobra.Command {
	var c pkcs11.Config
	cmd := &cobra.Command{
		Use:   "create-key",
		Short: "Generate the PKCS#11 seal key (AES-256, sensitive, not extractable) inside the token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pkcs11.CreateKey(c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created AES-256 key %q on token %q\n", c.KeyLabel, c.TokenLabel)
			return nil
		},
	}
	pkcs11Flags(cmd, &c)
	return cmd
}

func sealMigrateCommand() *cobra.Command {
	var (
		to      string
		c       pkcs11.Config
		cfg     = DefaultConfig()
		created bool
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move a stopped region from the file seal to the PKCS#11 seal",
		Long: `Move a stopped region from the file seal to the PKCS#11 seal: the region root
and every instance root (soft-deleted ones included) are unwrapped with the
file seal and re-wrapped inside the token, in one store transaction. The roots
do not change, so keys, role assignments and backups stay as they are.

Then start the server with the printed "seal" config (or the --seal-* flags).
The old seal key file is kept: delete it yourself once the region has started
on the PKCS#11 seal (until then it is the way back).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to != SealPKCS11 {
				return fmt.Errorf("seal migrate: --to must be %q (the only target)", SealPKCS11)
			}
			res, err := MigrateSeal(cmd.Context(), cfg, c, created)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "re-wrapped the region root and %d instance roots with key %q on token %q\n", res.Instances, c.KeyLabel, c.TokenLabel)
			fmt.Fprintf(out, "start the server with this in its config file (or the --seal-* flags):\n%s\n", sealHint(res.Seal))
			fmt.Fprintf(out, "the old seal key %s is kept: delete it once the region runs on the PKCS#11 seal\n", sealKeyFile(cfg))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", `target seal type ("pkcs11")`)
	f.StringVar(&cfg.DataDir, "data-dir", "", "the region's data directory (its server stopped)")
	f.StringVar(&cfg.SealKeyFile, "seal-key-file", "", "the file seal's key (default {data-dir}/seal.key)")
	f.BoolVar(&created, "create-key", false, "generate the key in the token first if no key has --key-label")
	pkcs11Flags(cmd, &c)
	return cmd
}
