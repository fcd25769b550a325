package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"tresor/internal/barrier"
	"tresor/internal/barrier/pkcs11"
)

// openSeal opens the configured seal. The file seal's key is only made
// for a new store: one made for an existing store would not open it, and
// would stand in the way of the real one. A PKCS#11 seal never makes its
// key (tresor seal create-key does).
func openSeal(cfg Config, dbFile string) (barrier.Seal, func() error, error) {
	fi, statErr := os.Stat(dbFile)
	existing := statErr == nil && fi.Size() > 0
	if cfg.Seal.Type == SealPKCS11 {
		s, err := pkcs11.Open(cfg.Seal.Config)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	sealFile := sealKeyFile(cfg)
	seal, err := barrier.OpenFileSeal(sealFile, !existing)
	if err != nil {
		if existing && errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("the seal key file %s is missing, and %s holds a region sealed with it: put the seal key file back (or name it with --seal-key-file)", sealFile, dbFile)
		}
		return nil, nil, err
	}
	return seal, nil, nil
}

func sealKeyFile(cfg Config) string {
	if cfg.SealKeyFile != "" {
		return cfg.SealKeyFile
	}
	return filepath.Join(cfg.DataDir, "seal.key")
}

// sealName names the configured seal in errors.
func sealName(cfg Config) string {
	if cfg.Seal.Type == SealPKCS11 {
		return fmt.Sprintf("the pkcs11 seal (key %q on token %q)", cfg.Seal.KeyLabel, cfg.Seal.TokenLabel)
	}
	return "the seal key file " + sealKeyFile(cfg)
}
