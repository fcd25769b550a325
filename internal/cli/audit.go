package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"tresor/internal/audit"
)

// Tresor's own: `tresor audit verify` checks the hash chain of the server's
// audit log offline (package audit; docs/security.md).

// auditFileOut is what verify prints for one file.
type auditFileOut struct {
	File     string `json:"file"`
	Lines    int    `json:"lines"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	LastHash string `json:"lastHash"`
	Result   string `json:"result"`
}

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the region's audit log",
		Args:  cobra.NoArgs,
	}
	var partial bool
	verify := &cobra.Command{
		Use:   "verify FILE [FILE...]",
		Short: "Verify the hash chain of audit log files",
		Long: `Verify the hash chain of audit log files: every line must carry the next
sequence number and the SHA-256 of the line before it, so a line that was
removed, changed, inserted or moved is found, and the first line that breaks
the chain is named.

Give every file of the log in order: the rotated files (audit-{time}.log,
oldest first) and then the current one; the chain goes on from file to file.
A chain alone cannot show that lines were cut from the end: compare lastSeq
and lastHash of the last file with the values the server logged when it
rotated or closed the log. With --partial the first file need not start the
log (older rotated files were deleted): its first line is taken as given.`,
		Example: "  tresor audit verify /var/lib/tresor/audit/audit-*.log /var/lib/tresor/audit/audit.log",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef(cmd, "give at least one audit log file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			v := audit.Verifier{Partial: partial}
			out := make([]auditFileOut, 0, len(args))
			for i, file := range args {
				before, _ := v.Last()
				n, err := verifyFile(&v, file)
				if err != nil {
					return err
				}
				seq, hash := v.Last()
				first := before + 1
				if i == 0 {
					first = v.First()
				}
				if n == 0 {
					first = 0
				}
				out = append(out, auditFileOut{File: file, Lines: n, FirstSeq: first, LastSeq: seq, LastHash: hash, Result: "ok"})
			}
			return a.print(out, nil)
		},
	}
	verify.Flags().BoolVar(&partial, "partial", false, "accept a first file that does not start the log (older rotated files deleted)")
	cmd.AddCommand(verify)
	return cmd
}

// verifyFile checks file as the continuation of what v has seen.
func verifyFile(v *audit.Verifier, file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	n, err := v.Verify(f)
	var ve *audit.VerifyError
	switch {
	case errors.As(err, &ve) && ve.Line == 1:
		return n, withHint(fmt.Errorf("audit: %s: line %d: %s", file, ve.Line, ve.Reason),
			"give every file of the log in order: the rotated ones, oldest first, then the current one (--partial if the oldest were deleted)")
	case errors.As(err, &ve):
		return n, fmt.Errorf("audit: %s: line %d: %s", file, ve.Line, ve.Reason)
	case err != nil:
		return n, fmt.Errorf("audit: %s: %w", file, err)
	}
	return n, nil
}
