package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/policy"
	"tresor/internal/store"
)

// stageChunk is how many values one StageValues command carries.
const stageChunk = 4096

// restoredBuckets are the instance buckets a full restore replaces.
var restoredBuckets = append([]string{keys.BucketKeys, keys.BucketVersions}, policy.PolicyBuckets...)

// checkRollbackPoint refuses a full restore into an instance that has no
// full backup completed since its activation (Managed HSM requires one: it
// is the way back if the restore was a mistake).
func (s *Service) checkRollbackPoint(ctx context.Context, in instances.Instance) error {
	since := in.Created
	if op := in.SDOperation; op != nil && op.Status == instances.SDSuccess && op.Time.After(since) {
		since = op.Time
	}
	var jobs []store.Job
	err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		var err error
		jobs, err = r.Jobs(in.Key)
		return err
	})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Kind == KindBackup && j.Status == store.JobSucceeded && !j.Start.Before(since) {
			return nil
		}
	}
	return fault.New(fault.Conflict, "BackupRequired",
		"a full restore replaces all keys, role assignments and settings of the managed HSM '%s': take a full backup of it first as its rollback point (tresor backup start, or az keyvault backup start); none has completed since it was activated", in.Name)
}

// StartRestore starts a full restore of folder of d into in and returns
// the job.
func (s *Service) StartRestore(ctx context.Context, in instances.Instance, d Destination, folder string) (Job, error) {
	loc, name, err := s.resolveFolder(d, folder)
	if err != nil {
		return Job{}, err
	}
	if err := s.checkRollbackPoint(ctx, in); err != nil {
		return Job{}, err
	}
	return s.start(ctx, in, KindRestore, true, func(ctx context.Context, j *store.Job, report func()) error {
		return s.restore(ctx, in, loc, name, j, report)
	})
}

func (s *Service) restore(ctx context.Context, in instances.Instance, loc location, folder string, j *store.Job, report func()) error {
	f, err := s.openFolder(ctx, in, loc, folder)
	if err != nil {
		return err
	}
	root, bs, h, index := f.root, f.bs, f.header, f.index
	if max := s.cfg.Keys.MaxKeysPerInstance(); max > 0 && h.Keys > max {
		return clientErrorf("the backup %s holds %d keys, more than the %d keys a managed HSM of this region may hold (maxKeysPerHsm); nothing was restored", folder, h.Keys, max)
	}
	j.Total = h.Keys
	report()
	cur, err := s.cfg.Instances.Get(ctx, in.Key)
	if err != nil {
		return err
	}
	if cur.Epoch != in.Epoch || string(cur.SealedRoot()) != string(in.SealedRoot()) {
		return clientErrorf("the managed HSM '%s' changed its security domain while the restore started; start it again", in.Name)
	}
	stage := store.BeginStage{Name: in.Key, Expect: cur.Generation, Stage: j.ID}
	if err := s.cfg.Store.Apply(ctx, stage); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrBusy) {
			return clientErrorf("the managed HSM '%s' changed while the restore started; start it again", in.Name)
		}
		return err
	}
	committed := false
	defer func() {
		if !committed {
			// Leave the instance exactly as before, also when the job's
			// context has ended.
			if err := s.cfg.Store.Apply(context.Background(), store.AbortStage{Name: in.Key, Stage: j.ID}); err != nil {
				s.log.Error("abort restore", "instance", in.Key, "job", j.ID, "err", err)
			}
		}
	}()

	fb, err := folderBarrier(root, folder)
	if err != nil {
		return err
	}
	ib, err := s.cfg.Keyring.Barrier(cur)
	if err != nil {
		return err
	}
	var pending []store.Value
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := s.cfg.Store.Apply(ctx, store.StageValues{Name: in.Key, Stage: j.ID, Values: pending})
		pending = nil
		return err
	}
	seen := map[string]bool{}
	var got Header
	for _, o := range h.Objects {
		pt, err := readObject(ctx, bs, fb, loc, folder, o)
		if err != nil {
			return err
		}
		switch o.Kind {
		case kindKeys:
			var ko keysObject
			if err := decodeObject(pt, &ko, o.Name); err != nil {
				return err
			}
			if ko.Kind != kindKeys || len(ko.Keys) != o.Keys {
				return fmt.Errorf("object %s: %w", o.Name, ErrMalformed)
			}
			for i := range ko.Keys {
				e := &ko.Keys[i]
				if index[e.ID] != o.Name || seen[e.ID] {
					return fmt.Errorf("object %s holds key %s where the manifest does not: %w", o.Name, e.ID, ErrTampered)
				}
				seen[e.ID] = true
				vals, err := s.cfg.Keys.SealExported(cur, e)
				if errors.Is(err, keys.ErrBackupMalformed) {
					return fmt.Errorf("object %s: key %s is not valid: %w", o.Name, e.ID, ErrMalformed)
				}
				if err != nil {
					return err
				}
				got.Keys++
				got.Versions += len(e.Versions)
				if e.Deleted {
					got.DeletedKeys++
				}
				pending = append(pending, vals...)
				if len(pending) >= stageChunk {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			j.Done = got.Keys
			report()
		case kindPolicy:
			var po policyObject
			if err := decodeObject(pt, &po, o.Name); err != nil {
				return err
			}
			got.RoleAssignments += len(po.RoleAssignments)
			got.RoleDefinitions += len(po.RoleDefinitions)
			for _, set := range []struct {
				bucket  string
				entries []Entry
			}{{policy.BucketRoleAssignments, po.RoleAssignments}, {policy.BucketRoleDefinitions, po.RoleDefinitions}} {
				if err := sealEntries(&pending, ib, set.bucket, set.entries, o.Name); err != nil {
					return err
				}
			}
		case kindSettings:
			var so settingsObject
			if err := decodeObject(pt, &so, o.Name); err != nil {
				return err
			}
			got.Settings += len(so.Settings)
			if err := sealEntries(&pending, ib, policy.BucketSettings, so.Settings, o.Name); err != nil {
				return err
			}
		}
	}
	if got.Keys != h.Keys || got.Versions != h.Versions || got.DeletedKeys != h.DeletedKeys ||
		got.RoleAssignments != h.RoleAssignments || got.RoleDefinitions != h.RoleDefinitions || got.Settings != h.Settings {
		return fmt.Errorf("the objects do not hold what the manifest counts: %w", ErrTampered)
	}
	if err := flush(); err != nil {
		return err
	}
	// The job ends in the swap's own transaction: a crash cannot leave a
	// restored instance whose job says it failed.
	done := *j
	done.Done, done.Status, done.End = got.Keys, store.JobSucceeded, s.cfg.Now().UTC()
	done.Details = fmt.Sprintf("restored %s from %s (a backup of %s)", got.summary(), folder, h.SourceHSM)
	err = s.cfg.Store.Apply(ctx, store.CommitStage{Name: in.Key, Stage: j.ID, Expect: cur.Generation + 1, Buckets: restoredBuckets, Job: &done})
	if err != nil {
		return err
	}
	committed = true
	*j = done
	return errJobRecorded
}

// sealEntries checks policy entries and appends them sealed for the instance.
func sealEntries(pending *[]store.Value, ib *barrier.Barrier, bucket string, entries []Entry, object string) error {
	for _, e := range entries {
		if err := policy.CheckPolicyValue(bucket, e.Key, e.Value); err != nil {
			return fmt.Errorf("object %s: %v: %w", object, err, ErrMalformed)
		}
		ct, err := ib.Seal(bucket+"/"+e.Key, e.Value)
		if err != nil {
			return err
		}
		*pending = append(*pending, store.Value{Bucket: bucket, Key: e.Key, Value: ct})
	}
	return nil
}

// StartKeyRestore starts a selective restore of one key (all its versions)
// from folder of d into in. The key must not exist in in.
func (s *Service) StartKeyRestore(ctx context.Context, in instances.Instance, d Destination, folder, keyName string) (Job, error) {
	if err := keys.ValidateName(keyName); err != nil {
		return Job{}, err
	}
	loc, name, err := s.resolveFolder(d, folder)
	if err != nil {
		return Job{}, err
	}
	return s.start(ctx, in, KindKeyRestore, true, func(ctx context.Context, j *store.Job, report func()) error {
		f, err := s.openFolder(ctx, in, loc, name)
		if err != nil {
			return err
		}
		root, bs, h, index := f.root, f.bs, f.header, f.index
		id := strings.ToLower(keyName)
		objName, ok := index[id]
		if !ok {
			return clientErrorf("the backup in folder %s has no key named %s", name, keyName)
		}
		var info ObjectInfo
		for _, o := range h.Objects {
			if o.Name == objName {
				info = o
			}
		}
		fb, err := folderBarrier(root, name)
		if err != nil {
			return err
		}
		pt, err := readObject(ctx, bs, fb, loc, name, info)
		if err != nil {
			return err
		}
		var ko keysObject
		if err := decodeObject(pt, &ko, info.Name); err != nil {
			return err
		}
		j.Total = 1
		for _, e := range ko.Keys {
			if e.ID != id {
				continue
			}
			n, err := s.cfg.Keys.RestoreExported(ctx, in, e)
			if err != nil {
				return err
			}
			j.Done = 1
			j.Details = fmt.Sprintf("Number of successful key versions restored: %d, Number of key versions could not overwrite: 0", n)
			return nil
		}
		return fmt.Errorf("object %s does not hold key %s that the manifest places there: %w", info.Name, keyName, ErrTampered)
	})
}
