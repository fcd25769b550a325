package keys

import (
	"context"
	"encoding/json"
	"fmt"

	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/store"
)

// Exported is one key as full backups carry it: the plaintext of its
// record and of each of its version records, exactly as the store keeps
// them sealed, under its storage name (the lower-cased key name). It is
// the unit of a full backup and of a selective key restore.
type Exported struct {
	ID       string            `json:"id"`
	Record   json.RawMessage   `json:"record"`
	Versions []json.RawMessage `json:"versions"` // in the record's order

	// Deleted tells whether the key is soft-deleted (set by ExportKeys
	// and CheckExported; not carried: the record says it).
	Deleted bool `json:"-"`
}

// ExportKeys returns the keys of the instance whose storage names sort
// after after ("" = from the first), at most limit of them, deleted keys
// included, read in one read transaction. Callers page through an
// instance by passing the last ID they got, so no read transaction is held
// between pages.
func (s *Service) ExportKeys(ctx context.Context, in instances.Instance, after string, limit int) ([]Exported, error) {
	b, err := s.inst.Barrier(in)
	if err != nil {
		return nil, err
	}
	var out []Exported
	err = s.st.View(ctx, func(r store.Reader) error {
		return r.ForEach(in.Key, BucketKeys, after, func(id string, sealed []byte) error {
			if len(out) >= limit {
				return store.ErrStop
			}
			pt, err := b.Open(BucketKeys+"/"+id, sealed)
			if err != nil {
				return fmt.Errorf("keys: open record of %s: %w", id, err)
			}
			var rec keyRecord
			if err := json.Unmarshal(pt, &rec); err != nil {
				return fmt.Errorf("keys: record of %s: %w", id, err)
			}
			e := Exported{ID: id, Record: pt, Deleted: rec.Deleted, Versions: make([]json.RawMessage, 0, len(rec.Versions))}
			for _, v := range rec.Versions {
				sv, err := r.InstanceValue(in.Key, BucketVersions, id+"/"+v)
				if err != nil {
					return fmt.Errorf("keys: version %s/%s: %w", id, v, err)
				}
				vpt, err := b.Open(BucketVersions+"/"+id+"/"+v, sv)
				if err != nil {
					return fmt.Errorf("keys: open version %s/%s: %w", id, v, err)
				}
				e.Versions = append(e.Versions, vpt)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// CountKeys returns how many keys (deleted ones included) the instance
// holds, without opening any.
func (s *Service) CountKeys(ctx context.Context, in instances.Instance) (int, error) {
	n := 0
	err := s.st.View(ctx, func(r store.Reader) error {
		return r.ForEach(in.Key, BucketKeys, "", func(string, []byte) error { n++; return nil })
	})
	return n, err
}

// payload parses and checks an exported key.
func (e *Exported) payload() (backupPayload, error) {
	var p backupPayload
	if json.Unmarshal(e.Record, &p.Record) != nil {
		return p, ErrBackupMalformed
	}
	for _, v := range e.Versions {
		var vr versionRecord
		if json.Unmarshal(v, &vr) != nil {
			return p, ErrBackupMalformed
		}
		p.Versions = append(p.Versions, vr)
	}
	p.Name = p.Record.Name
	if p.Name == "" {
		p.Name = e.ID
	}
	if err := p.validate(); err != nil || storageName(p.Name) != e.ID {
		return p, ErrBackupMalformed
	}
	e.Deleted = p.Record.Deleted
	return p, nil
}

// CheckExported checks that e is a well-formed key (its name, its record
// and every version in order); it returns ErrBackupMalformed otherwise.
func CheckExported(e *Exported) error {
	_, err := e.payload()
	return err
}

// SealExported checks e and seals its records for the instance in: the
// values a full restore stages in place of the instance's keys.
func (s *Service) SealExported(in instances.Instance, e *Exported) ([]store.Value, error) {
	p, err := e.payload()
	if err != nil {
		return nil, err
	}
	b, err := s.inst.Barrier(in)
	if err != nil {
		return nil, err
	}
	out := make([]store.Value, 0, 1+len(e.Versions))
	ct, err := b.Seal(BucketKeys+"/"+e.ID, e.Record)
	if err != nil {
		return nil, err
	}
	out = append(out, store.Value{Bucket: BucketKeys, Key: e.ID, Value: ct})
	for i, v := range e.Versions {
		path := e.ID + "/" + p.Versions[i].Version
		ct, err := b.Seal(BucketVersions+"/"+path, v)
		if err != nil {
			return nil, err
		}
		out = append(out, store.Value{Bucket: BucketVersions, Key: path, Value: ct})
	}
	return out, nil
}

// RestoreExported brings one exported key, with all its versions, into the
// instance (a selective key restore). The name must be free: a key of that
// name, even a deleted one, makes it fail with a Conflict. A deleted key
// comes back not deleted. It returns how many versions it restored.
func (s *Service) RestoreExported(ctx context.Context, in instances.Instance, e Exported) (int, error) {
	p, err := e.payload()
	if err != nil {
		return 0, fault.New(fault.BadParameter, "BadParameter", "the backup's key %s is not valid", e.ID)
	}
	if _, err := s.restorePayload(ctx, in, p); err != nil {
		return 0, err
	}
	return len(p.Versions), nil
}
