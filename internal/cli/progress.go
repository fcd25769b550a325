package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"tresor/internal/client"
)

// wait waits for op to end, showing its status on stderr when stderr is a
// terminal.
func (a *app) wait(ctx context.Context, op *client.Operation, what string) error {
	tty := isTerminal(a.env.Stderr)
	shown := false
	err := op.Wait(ctx, func(status string) {
		if tty && !op.Done() {
			fmt.Fprintf(a.env.Stderr, "\r\033[K%s: %s …", what, status)
			shown = true
		}
	})
	if shown {
		fmt.Fprint(a.env.Stderr, "\r\033[K")
	}
	return err
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
