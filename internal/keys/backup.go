package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/instances"
)

// The single-key backup format: JSON
//
//	{"format": "tresor.keybackup/v1", "rootId": "<hex>", "nonce": <b64>, "ciphertext": <b64>}
//
// whose ciphertext is AES-256-GCM (the barrier of purpose KeyBackup) under a key derived from the instance's
// security-domain root (label "tresor/key-backup/v1"), with the format and
// the root id as additional data. The plaintext holds the key's record
// (versions, rotation policy) and every version record. Any instance holding
// the same security domain can open it; no other can.
const (
	backupFormat = "tresor.keybackup/v1"
	backupLabel  = "tresor/key-backup/v1"
	// MaxBackupSize bounds a backup blob (100 RSA-4096 versions fit).
	MaxBackupSize = 2 << 20
)

type backupEnvelope struct {
	Format     string `json:"format"`
	RootID     string `json:"rootId"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

type backupPayload struct {
	Name     string          `json:"name"`
	Record   keyRecord       `json:"record"`
	Versions []versionRecord `json:"versions"`
}

// backupBarrier seals single-key backups: the purpose KeyBackup, the format
// as namespace and the root id as path, so the additional data is the
// format, a NUL byte and the root id.
func backupBarrier(root *barrier.RootKey) (*barrier.Barrier, error) {
	return barrier.New(root, barrier.KeyBackup, backupFormat)
}

// The envelope carries the barrier's sealed bytes (version ‖ nonce ‖
// ciphertext) split into its nonce and ciphertext fields.
const (
	sealVersion = 0x01
	nonceSize   = 12
)

// Backup returns an opaque blob with every version of a key that is not deleted.
func (s *Service) Backup(ctx context.Context, in instances.Instance, name string) ([]byte, error) {
	name = storageName(name)
	var p backupPayload
	err := s.retry(in, name, func() error {
		first, _, err := s.read(ctx, in, name)
		if err != nil {
			return err
		}
		if first.recSealed == nil || first.rec.Deleted {
			return keyNotFound(name)
		}
		snap, sealed, err := s.read(ctx, in, name, first.rec.Versions...)
		if err != nil {
			return err
		}
		if string(snap.recSealed) != string(first.recSealed) {
			return errRetry
		}
		p = backupPayload{Name: name, Record: snap.rec}
		if snap.rec.Name != "" {
			p.Name = snap.rec.Name
		}
		for _, v := range snap.rec.Versions {
			vr, err := s.openVersion(in, name, v, sealed[v])
			if err != nil {
				return err
			}
			p.Versions = append(p.Versions, vr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	root, err := s.inst.Root(in)
	if err != nil {
		return nil, err
	}
	return sealBackup(root, p)
}

func sealBackup(root *barrier.RootKey, p backupPayload) ([]byte, error) {
	b, err := backupBarrier(root)
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	env := backupEnvelope{Format: backupFormat, RootID: root.ID()}
	sealed, err := b.Seal(env.RootID, pt)
	if err != nil {
		return nil, err
	}
	env.Nonce, env.Ciphertext = sealed[1:1+nonceSize], sealed[1+nonceSize:]
	return json.Marshal(env)
}

// ErrBackupMalformed: the bytes are not a Tresor key backup.
var ErrBackupMalformed = errors.New("keys: not a Tresor key backup")

// ErrBackupOtherDomain: the backup belongs to another security domain.
var ErrBackupOtherDomain = errors.New("keys: the backup was made under another security domain")

// openBackup parses and decrypts a backup with root. Errors are
// ErrBackupMalformed or ErrBackupOtherDomain, without detail from the input.
func openBackup(root *barrier.RootKey, blob []byte) (backupPayload, error) {
	var env backupEnvelope
	if len(blob) > MaxBackupSize || json.Unmarshal(blob, &env) != nil || env.Format != backupFormat {
		return backupPayload{}, ErrBackupMalformed
	}
	if env.RootID != root.ID() {
		return backupPayload{}, ErrBackupOtherDomain
	}
	b, err := backupBarrier(root)
	if err != nil {
		return backupPayload{}, err
	}
	if len(env.Nonce) != nonceSize {
		return backupPayload{}, ErrBackupMalformed
	}
	sealed := make([]byte, 0, 1+len(env.Nonce)+len(env.Ciphertext))
	sealed = append(append(append(sealed, sealVersion), env.Nonce...), env.Ciphertext...)
	pt, err := b.Open(env.RootID, sealed)
	if err != nil {
		return backupPayload{}, ErrBackupMalformed
	}
	var p backupPayload
	if err := json.Unmarshal(pt, &p); err != nil {
		return backupPayload{}, ErrBackupMalformed
	}
	if err := p.validate(); err != nil {
		return backupPayload{}, err
	}
	return p, nil
}

func (p backupPayload) validate() error {
	if ValidateName(p.Name) != nil || len(p.Versions) == 0 || len(p.Versions) != len(p.Record.Versions) || len(p.Versions) > MaxVersions {
		return ErrBackupMalformed
	}
	for i, vr := range p.Versions {
		if vr.Version != p.Record.Versions[i] || len(vr.Material) == 0 {
			return ErrBackupMalformed
		}
	}
	if !slices.Contains(p.Record.Versions, p.Record.Current) {
		return ErrBackupMalformed
	}
	return nil
}

// Restore brings a backed-up key (all its versions) into the instance. The
// name must be free.
func (s *Service) Restore(ctx context.Context, in instances.Instance, blob []byte) (Version, error) {
	root, err := s.inst.Root(in)
	if err != nil {
		return Version{}, err
	}
	p, err := openBackup(root, blob)
	switch {
	case errors.Is(err, ErrBackupOtherDomain):
		return Version{}, fault.New(fault.BadParameter, "BadParameter",
			"the key backup was made by a managed HSM with another security domain: it can only be restored into an HSM that holds the same security domain")
	case errors.Is(err, ErrBackupMalformed):
		return Version{}, fault.New(fault.BadParameter, "BadParameter", "the value is not a valid key backup")
	case err != nil:
		return Version{}, err
	}
	return s.restorePayload(ctx, in, p)
}

// restorePayload writes a backed-up key into the instance under a free name.
func (s *Service) restorePayload(ctx context.Context, in instances.Instance, p backupPayload) (Version, error) {
	rec := p.Record
	rec.Name, rec.Deleted = p.Name, false
	rec.DeletedDate, rec.ScheduledPurgeDate = rec.DeletedDate.UTC(), rec.ScheduledPurgeDate.UTC()
	var out Version
	id := storageName(p.Name)
	err := s.retry(in, id, func() error {
		snap, _, err := s.read(ctx, in, id)
		if err != nil {
			return err
		}
		if snap.recSealed != nil {
			return fault.New(fault.Conflict, "Conflict", "a key named %s exists (or is deleted and recoverable) in this managed HSM; restore needs a free name", p.Name)
		}
		unlock, err := s.room(ctx, in)
		if err != nil {
			return err
		}
		defer unlock()
		if err := s.write(ctx, in, snap, id, &rec, p.Versions, nil); err != nil {
			return err
		}
		for _, vr := range p.Versions {
			if vr.Version == rec.Current {
				v, err := s.toVersion(id, rec, vr)
				out = v
				return err
			}
		}
		return fmt.Errorf("keys: restored key has no current version")
	})
	return out, err
}
