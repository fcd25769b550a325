//go:build pkcs11

package pkcs11

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// readPIN reads the PIN file: one line, not readable by group or others.
// The PIN never appears in an error.
func readPIN(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pkcs11: read PIN file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("pkcs11: PIN file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("pkcs11: PIN file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("pkcs11: PIN file %s must not be readable by group or others (mode %v)", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return "", fmt.Errorf("pkcs11: read PIN file: %w", err)
	}
	pin := strings.TrimRight(string(b), "\r\n")
	if pin == "" || strings.ContainsAny(pin, "\r\n") {
		return "", fmt.Errorf("pkcs11: PIN file %s must hold the PIN on one line", path)
	}
	return pin, nil
}
