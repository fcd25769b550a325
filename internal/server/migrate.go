package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"tresor/internal/barrier"
	"tresor/internal/barrier/pkcs11"
	"tresor/internal/store"
)

// ErrAlreadyMigrated is returned by [MigrateSeal] when the region's root
// already opens with the target seal.
var ErrAlreadyMigrated = errors.New("the region is already on this seal")

// MigrateResult tells what [MigrateSeal] re-wrapped.
type MigrateResult struct {
	// Instances is how many instance roots were re-wrapped (soft-deleted
	// instances included).
	Instances int
	// Seal is the "seal" object for the region's config file from now on.
	Seal SealConfig
}

// MigrateSeal moves the region in cfg.DataDir from the file seal (the key
// at cfg.SealKeyFile, default {DataDir}/seal.key) to the PKCS#11 seal to:
// it unwraps the region root and every instance root with the file seal
// and replaces their wraps by the PKCS#11 seal's, all in one store
// command, then checks that each opens with the new seal. The server must
// be stopped (a held store lock is refused). The roots themselves do not
// change, so nothing else is rewritten; the old seal key file is left for
// the operator to delete. With createKey, a missing seal key is first
// generated in the token (once the store lock is held).
func MigrateSeal(ctx context.Context, cfg Config, to pkcs11.Config, createKey bool) (MigrateResult, error) {
	res := MigrateResult{Seal: SealConfig{Type: SealPKCS11, Config: to}}
	if cfg.DataDir == "" {
		return res, errors.New("seal migrate: --data-dir is required")
	}
	if err := to.Validate(); err != nil {
		return res, err
	}
	dbFile := filepath.Join(cfg.DataDir, "tresor.db")
	if _, err := statNonEmpty(dbFile); err != nil {
		return res, fmt.Errorf("seal migrate: no region in %s: %w", cfg.DataDir, err)
	}
	st, err := store.OpenBolt(dbFile)
	if err != nil {
		return res, openStoreError(cfg.DataDir, err)
	}
	defer st.Close()
	if createKey {
		if err := pkcs11.CreateKey(to); err != nil && !errors.Is(err, pkcs11.ErrKeyExists) {
			return res, err
		}
	}
	newSeal, err := pkcs11.Open(to)
	if err != nil {
		return res, err
	}
	defer newSeal.Close()

	var region []byte
	var ins []store.Instance
	err = st.View(ctx, func(r store.Reader) error {
		var err error
		if region, err = r.RegionValue(keyRegionRoot); err != nil {
			return fmt.Errorf("region root: %w", err)
		}
		ins, err = r.Instances()
		return err
	})
	if err != nil {
		return res, err
	}
	if _, _, err := unwrapRegionRoot(newSeal, region); err == nil {
		return res, fmt.Errorf("%w: the region root in %s opens with key %q on token %q", ErrAlreadyMigrated, cfg.DataDir, to.KeyLabel, to.TokenLabel)
	}
	oldSeal, err := barrier.OpenFileSeal(sealKeyFile(cfg), false)
	if err != nil {
		return res, err
	}
	root, name, err := unwrapRegionRoot(oldSeal, region)
	if err != nil {
		return res, fmt.Errorf("region root key does not open with %s: %w", sealName(cfg), err)
	}
	cmd := store.RewrapRoots{}
	w, err := barrier.WrapRootKey(newSeal, root, name)
	if err != nil {
		return res, err
	}
	cmd.Region = append(cmd.Region, store.Rewrap{Name: keyRegionRoot, Old: region, New: w})
	for _, in := range ins {
		root, err := barrier.UnwrapRootKey(oldSeal, in.WrappedRoot, in.Name)
		if err != nil {
			return res, fmt.Errorf("root of instance %s does not open with %s: %w", in.Name, sealName(cfg), err)
		}
		w, err := barrier.WrapRootKey(newSeal, root, in.Name)
		if err != nil {
			return res, err
		}
		cmd.Instances = append(cmd.Instances, store.Rewrap{Name: in.Name, Old: in.WrappedRoot, New: w})
	}
	if err := st.Apply(ctx, cmd); err != nil {
		return res, fmt.Errorf("seal migrate: %w", err)
	}
	// Read back: every root opens with the new seal.
	err = st.View(ctx, func(r store.Reader) error {
		v, err := r.RegionValue(keyRegionRoot)
		if err != nil {
			return err
		}
		if _, _, err := unwrapRegionRoot(newSeal, v); err != nil {
			return fmt.Errorf("region root: %w", err)
		}
		ins, err := r.Instances()
		if err != nil {
			return err
		}
		for _, in := range ins {
			if _, err := barrier.UnwrapRootKey(newSeal, in.WrappedRoot, in.Name); err != nil {
				return fmt.Errorf("instance %s: %w", in.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("seal migrate: a root does not open with the new seal after the move: %w", err)
	}
	res.Instances = len(cmd.Instances)
	return res, nil
}

// unwrapRegionRoot opens the region root under either of its names.
func unwrapRegionRoot(s barrier.Seal, wrapped []byte) (*barrier.RootKey, string, error) {
	root, err := barrier.UnwrapRootKey(s, wrapped, rootNameProtected)
	if err == nil {
		return root, rootNameProtected, nil
	}
	root, err = barrier.UnwrapRootKey(s, wrapped, rootNameLegacy)
	return root, rootNameLegacy, err
}

// sealHint is the config-file snippet that names the seal.
func sealHint(c SealConfig) string {
	b, _ := json.MarshalIndent(map[string]SealConfig{"seal": c}, "", "  ")
	return string(b)
}

func statNonEmpty(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	return fi.Size(), nil
}
