package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"tresor/internal/barrier"
	"tresor/internal/blob"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/policy"
	"tresor/internal/store"
)

// keysObject is the plaintext of a keys object.
type keysObject struct {
	Kind string          `json:"kind"`
	Keys []keys.Exported `json:"keys"`
}

// exportPage is how many keys one read transaction exports.
const exportPage = 256

// uploaders is how many objects are written to the container at once.
const uploaders = 4

// uploader writes objects concurrently and keeps the first error.
type uploader struct {
	ctx  context.Context
	bs   blob.Store
	sem  chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
	stop context.CancelFunc
}

func newUploader(ctx context.Context, bs blob.Store) *uploader {
	ctx, cancel := context.WithCancel(ctx)
	return &uploader{ctx: ctx, bs: bs, sem: make(chan struct{}, uploaders), stop: cancel}
}

func (u *uploader) put(name string, data []byte) error {
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		return u.wait()
	}
	u.wg.Add(1)
	go func() {
		defer func() { <-u.sem; u.wg.Done() }()
		if err := u.bs.Put(u.ctx, name, data); err != nil {
			u.mu.Lock()
			if u.err == nil {
				u.err = err
				u.stop()
			}
			u.mu.Unlock()
		}
	}()
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// wait waits for every put and returns the first error.
func (u *uploader) wait() error {
	u.wg.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		if err := u.ctx.Err(); err != nil {
			return err
		}
	}
	return u.err
}

// writeBackup writes a full backup of in into folder of the container and
// returns its header. The manifest is written last, after every other
// object is in place, so a folder without a manifest is incomplete.
func (s *Service) writeBackup(ctx context.Context, in instances.Instance, bs blob.Store, loc location, folder string, progress func(done, total int)) (Header, error) {
	root, err := s.cfg.Keyring.Root(in)
	if err != nil {
		return Header{}, err
	}
	fb, err := folderBarrier(root, folder)
	if err != nil {
		return Header{}, err
	}
	// Every backup writes a policy object: if one is there, the folder is
	// another backup's. (A probe read, not a list: a backup's SAS need not
	// allow listing.)
	switch _, err := bs.Get(ctx, loc.join(folder+"/policy"), 0); {
	case err == nil, errors.Is(err, blob.ErrTooLarge):
		return Header{}, clientErrorf("the folder %s exists already in the container: start the backup again", folder)
	case !errors.Is(err, blob.ErrNotFound):
		return Header{}, err
	}
	total, err := s.cfg.Keys.CountKeys(ctx, in)
	if err != nil {
		return Header{}, err
	}
	progress(0, total)
	h := Header{Format: Format, Folder: folder, SourceHSM: in.Name, Created: s.cfg.Now().UTC(), RootKeyID: root.ID()}
	index := map[string]string{}
	up := newUploader(ctx, bs)
	put := func(name, kind string, v any, nkeys int) error {
		pt, err := json.Marshal(v)
		if err != nil {
			return err
		}
		sealed, info, err := sealObject(fb, name, kind, pt, nkeys)
		if err != nil {
			return err
		}
		h.Objects = append(h.Objects, info)
		return up.put(loc.join(folder+"/"+name), sealed)
	}

	var batch []keys.Exported
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		name := fmt.Sprintf("keys-%06d", len(h.Objects)+1)
		for _, e := range batch {
			index[e.ID] = name
		}
		err := put(name, kindKeys, keysObject{Kind: kindKeys, Keys: batch}, len(batch))
		batch, size = nil, 0
		progress(h.Keys, max(total, h.Keys))
		return err
	}
	after := ""
	for {
		page, err := s.cfg.Keys.ExportKeys(ctx, in, after, exportPage)
		if err != nil {
			up.stop()
			_ = up.wait()
			return Header{}, err
		}
		for _, e := range page {
			batch = append(batch, e)
			h.Keys++
			h.Versions += len(e.Versions)
			if e.Deleted {
				h.DeletedKeys++
			}
			size += len(e.Record)
			for _, v := range e.Versions {
				size += len(v)
			}
			if len(batch) >= keysPerObject || size >= bytesPerObject {
				if err := flush(); err != nil {
					return Header{}, up.waitErr(err)
				}
			}
		}
		if len(page) < exportPage {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := flush(); err != nil {
		return Header{}, up.waitErr(err)
	}

	ib, err := s.cfg.Keyring.Barrier(in)
	if err != nil {
		return Header{}, up.waitErr(err)
	}
	pols := map[string][]Entry{}
	for _, b := range policy.PolicyBuckets {
		if pols[b], err = s.readBucket(ctx, in, ib, b); err != nil {
			return Header{}, up.waitErr(err)
		}
	}
	h.RoleAssignments = len(pols[policy.BucketRoleAssignments])
	h.RoleDefinitions = len(pols[policy.BucketRoleDefinitions])
	h.Settings = len(pols[policy.BucketSettings])
	if err := put("policy", kindPolicy, policyObject{Kind: kindPolicy,
		RoleAssignments: pols[policy.BucketRoleAssignments], RoleDefinitions: pols[policy.BucketRoleDefinitions]}, 0); err != nil {
		return Header{}, up.waitErr(err)
	}
	if err := put("settings", kindSettings, settingsObject{Kind: kindSettings, Settings: pols[policy.BucketSettings]}, 0); err != nil {
		return Header{}, up.waitErr(err)
	}
	if err := up.wait(); err != nil {
		return Header{}, err
	}
	m, err := encodeManifest(fb, h, index)
	if err != nil {
		return Header{}, err
	}
	if err := bs.Put(ctx, loc.join(folder+"/"+ManifestName), m); err != nil {
		return Header{}, err
	}
	progress(h.Keys, h.Keys)
	return h, nil
}

// waitErr stops the uploads, waits for them and returns err.
func (u *uploader) waitErr(err error) error {
	u.stop()
	_ = u.wait()
	return err
}

// readBucket returns the opened values of a (small) instance bucket.
func (s *Service) readBucket(ctx context.Context, in instances.Instance, b *barrier.Barrier, bucket string) ([]Entry, error) {
	var out []Entry
	err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		return r.ForEach(in.Key, bucket, "", func(k string, v []byte) error {
			pt, err := b.Open(bucket+"/"+k, v)
			if err != nil {
				return fmt.Errorf("backup: open %s/%s of %s: %w", bucket, k, in.Key, err)
			}
			out = append(out, Entry{Key: k, Value: pt})
			return nil
		})
	})
	return out, err
}
