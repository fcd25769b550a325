// Package backup implements full backups of an HSM instance to blob
// storage, full restores and selective key restores, as Azure Managed HSM
// does them (POST /backup, PUT /restore, PUT /keys/{name}/restore), as
// jobs that survive a restart as Failed, never as InProgress.
//
// # Format
//
// A backup is a folder mhsm-{name}-{yyyyMMddHHmmssff} in a blob container:
// keys packed into objects keys-000001, … (at most 1,000 keys or 8 MiB
// each), one policy object (role assignments and custom roles), one
// settings object and, written last, the manifest. Every object is sealed
// by the barrier of purpose [barrier.FullBackup] under the instance's
// security-domain root, with the folder and the object's name as
// additional data; the manifest lists each object's size and SHA-256 and,
// sealed, which object holds which key. docs/backup-format.md describes it.
//
// # Restore
//
// A full restore reads the manifest, checks the security domain, then
// stages every object into the store (package store's BeginStage,
// StageValues) while verifying it, and swaps the instance's keys, role
// assignments, custom roles and settings in one CommitStage. Until then the
// instance is unchanged; a failed restore aborts the stage, and a restore
// killed with its process is aborted at the next start ([Service.Recover]).
//
// Use [Service.StartBackup], [Service.StartRestore] and
// [Service.StartKeyRestore]; poll with [Service.Job].
package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/blob"
	"tresor/internal/blob/container"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/store"
)

// Job kinds. The status route of a job is /backup/{id}/pending for the
// backup kinds and /restore/{id}/pending for the others.
const (
	KindBackup     = "backup"
	KindPreBackup  = "prebackup"
	KindRestore    = "restore"
	KindKeyRestore = "keyrestore"
	KindPreRestore = "prerestore"
)

// BackupKinds and RestoreKinds group the kinds by status route.
var (
	BackupKinds  = []string{KindBackup, KindPreBackup}
	RestoreKinds = []string{KindRestore, KindKeyRestore, KindPreRestore}
)

// Instances reads instances (the current record, for the restore's swap).
type Instances interface {
	Get(ctx context.Context, name string) (instances.Instance, error)
}

// Config configures a [Service].
type Config struct {
	Store     store.Store
	Instances Instances
	Keyring   keys.Keyring
	Keys      *keys.Service
	// FileRoots are the directories that file:// destinations may name (a
	// file:// container must be one of them or inside one). Without any,
	// file:// destinations are refused.
	FileRoots []string
	// Region is the region barrier: it seals the backup policies (their
	// SAS tokens). Without it, backup policies are refused.
	Region *barrier.Barrier
	Logger *slog.Logger
	Now    func() time.Time
	// OnJobEnd, if set, is called once when a job of this process ends,
	// with its kind ("backup", "restore", …), its result ("Succeeded" or
	// "Failed") and how long it ran (metrics).
	OnJobEnd func(kind, result string, d time.Duration)
	// Node is this process's cluster node id ("" on a single node): jobs
	// record it, and Recover fails only this node's interrupted jobs.
	Node string
}

// Service runs backup and restore jobs. It is safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // jobs run under it; Close cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	lastBackup map[string]time.Time // start of the last backup by instance
	closed     bool                 // no job starts once set (under mu)

	runMu sync.Mutex    // one RunDuePolicies at a time
	wake  chan struct{} // a policy was set or deleted
}

// New returns the service. Call [Service.Recover] before serving.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Instances == nil || cfg.Keyring == nil || cfg.Keys == nil {
		return nil, errors.New("backup: store, instances, keyring and keys are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for i, r := range cfg.FileRoots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("backup: file root %q is not an absolute path", r)
		}
		cfg.FileRoots[i] = filepath.Clean(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, lastBackup: map[string]time.Time{}, wake: make(chan struct{}, 1)}, nil
}

// interruptedMessage is the error of a job whose process ended under it.
const interruptedMessage = "the job was interrupted: the server stopped while it ran; start it again"

// Recover ends what a previous process left: every job still InProgress
// becomes Failed, and every staged restore is aborted (the instance stays
// as it was before the restore). On a cluster node (Config.Node) only that
// node's jobs are failed, and only the stages of instances left with no
// running job are aborted: the other nodes' jobs go on.
func (s *Service) Recover(ctx context.Context) error {
	if err := s.cfg.Store.Apply(ctx, store.FailInterruptedJobs{Message: interruptedMessage, At: s.cfg.Now().UTC(), Node: s.cfg.Node}); err != nil {
		return fmt.Errorf("backup: fail interrupted jobs: %w", err)
	}
	var staging []string
	err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		ins, err := r.Instances()
		if err != nil {
			return err
		}
		for _, in := range ins {
			if in.Staging == "" {
				continue
			}
			jobs, err := r.Jobs(in.Name)
			if err != nil {
				return err
			}
			if s.cfg.Node != "" && slices.ContainsFunc(jobs, func(j store.Job) bool { return j.Status == store.JobInProgress }) {
				continue // a restore another node runs
			}
			staging = append(staging, in.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range staging {
		if err := s.cfg.Store.Apply(ctx, store.AbortStage{Name: name}); err != nil {
			return fmt.Errorf("backup: abort the interrupted restore of %s: %w", name, err)
		}
		s.log.Warn("aborted an interrupted restore", "instance", name)
	}
	return nil
}

// Close stops running jobs (they end as Failed) and waits for them.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Destination is where a job reads or writes: a storage URI as the client
// sent it and its SAS token.
type Destination struct {
	StorageURI string
	Token      string
	// UseManagedIdentity is refused: Tresor has no managed identities.
	UseManagedIdentity bool
}

// errClient marks an error whose message is for the job's user (it names
// what to fix and holds no secret).
type errClient struct{ msg string }

func (e errClient) Error() string { return e.msg }

func clientErrorf(format string, args ...any) error { return errClient{fmt.Sprintf(format, args...)} }

// location is a resolved destination.
type location struct {
	containerURI string
	path         string // inside the container; "" = at its root
	token        string
	given        string // the storage URI as the client gave it
}

func (l location) join(name string) string {
	if l.path == "" {
		return name
	}
	return l.path + "/" + name
}

// resolve checks a destination and resolves it with folder ("" for a new backup).
func (s *Service) resolve(d Destination, folder string) (location, error) {
	if d.UseManagedIdentity {
		return location{}, fault.New(fault.BadParameter, "BadParameter",
			"useManagedIdentity is not supported: Tresor has no managed identities; give the container's SAS token in token instead (useManagedIdentity false)")
	}
	if strings.TrimSpace(d.StorageURI) == "" {
		return location{}, fault.New(fault.BadParameter, "BadParameter", "storageResourceUri is required: the URI of the blob container")
	}
	u, p, err := container.Resolve(strings.TrimRight(d.StorageURI, "/"), folder)
	if err != nil {
		return location{}, fault.New(fault.BadParameter, "BadParameter", "%s", strings.TrimPrefix(err.Error(), "blob: "))
	}
	if strings.HasPrefix(u, "file:") {
		if err := s.checkFileRoot(u); err != nil {
			return location{}, err
		}
	} else if strings.TrimPrefix(d.Token, "?") == "" {
		return location{}, fault.New(fault.BadParameter, "BadParameter", "token is required: the SAS token of the container (a backup needs the permissions c, r, w, d; a restore r, l)")
	}
	return location{containerURI: u, path: p, token: d.Token, given: strings.TrimRight(d.StorageURI, "/")}, nil
}

func (s *Service) checkFileRoot(u string) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "file" || pu.Path == "" {
		return fault.New(fault.BadParameter, "BadParameter", "'%s' is not a file:// URI of a directory", u)
	}
	dir := filepath.Clean(pu.Path) // the directory the file store opens (unescaped)
	for _, r := range s.cfg.FileRoots {
		if dir == r || strings.HasPrefix(dir, r+string(filepath.Separator)) {
			return nil
		}
	}
	if len(s.cfg.FileRoots) == 0 {
		return fault.New(fault.BadParameter, "BadParameter", "file:// destinations are not enabled on this region (configure backupDirs, or use Azure Blob Storage)")
	}
	return fault.New(fault.BadParameter, "BadParameter", "file:// destinations must be inside one of the region's backup directories (%s)", strings.Join(s.cfg.FileRoots, ", "))
}

func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Job returns the job id of instance in, if its kind is one of kinds.
func (s *Service) Job(ctx context.Context, in instances.Instance, id string, kinds []string) (Job, error) {
	var j store.Job
	err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		var err error
		j, err = r.Job(strings.ToLower(id))
		return err
	})
	if errors.Is(err, store.ErrNotFound) || err == nil && (j.Instance != in.Key || !slices.Contains(kinds, j.Kind)) {
		return Job{}, fault.New(fault.NotFound, "NotFound", "the managed HSM '%s' has no job '%s' of this kind", in.Name, id)
	}
	return j, err
}

// start records a new job and runs fn for it in the background. fn
// reports progress with its report argument; its error ends the job as
// Failed (with the error's message when it is meant for the user).
func (s *Service) start(ctx context.Context, in instances.Instance, kind string, exclusive bool, fn func(ctx context.Context, j *store.Job, report func()) error) (Job, error) {
	j, _, err := s.startJob(ctx, in, kind, exclusive, fn)
	return j, err
}

// startJob is start; done is closed when the job's end is recorded.
func (s *Service) startJob(ctx context.Context, in instances.Instance, kind string, exclusive bool, fn func(ctx context.Context, j *store.Job, report func()) error) (Job, <-chan struct{}, error) {
	j := store.Job{ID: newJobID(), Kind: kind, Instance: in.Key, Status: store.JobInProgress, Start: s.cfg.Now().UTC(), Node: s.cfg.Node}
	if kind == KindBackup {
		j.Start = s.backupStart(in.Key, j.Start)
	}
	s.mu.Lock()
	defer s.mu.Unlock() // Close waits for the jobs that started before it
	if s.closed {
		return Job{}, nil, fault.New(fault.Unavailable, "ServiceUnavailable", "the server is stopping")
	}
	err := s.cfg.Store.Apply(ctx, store.StartJob{Job: j, Exclusive: exclusive})
	if errors.Is(err, store.ErrConflict) {
		return Job{}, nil, fault.Wrap(err, fault.Conflict, "Conflict",
			"a backup or restore is already running on the managed HSM '%s': only one runs at a time; wait for it to finish", in.Name)
	}
	if err != nil {
		return Job{}, nil, err
	}
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		s.run(in, j, fn)
	}()
	return j, done, nil
}

// errJobRecorded is returned by a job function that recorded the job's
// successful end itself, in the same transaction as its effect.
var errJobRecorded = errors.New("backup: the job's end is recorded")

func (s *Service) run(in instances.Instance, j store.Job, fn func(ctx context.Context, j *store.Job, report func()) error) {
	ctx := s.ctx
	began := time.Now()
	last := time.Time{}
	report := func() {
		if time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		if err := s.cfg.Store.Apply(ctx, store.UpdateJob{Job: j}); err != nil && ctx.Err() == nil {
			s.log.Warn("job progress", "job", j.ID, "err", err)
		}
	}
	err := fn(ctx, &j, report)
	if errors.Is(err, errJobRecorded) {
		s.log.Info("job succeeded", "job", j.ID, "kind", j.Kind, "instance", in.Key, "details", j.Details)
		s.jobEnded(j.Kind, store.JobSucceeded, began)
		return
	}
	j.End = s.cfg.Now().UTC()
	if err != nil {
		j.Status, j.Error = store.JobFailed, s.message(j, err)
		if ctx.Err() != nil {
			j.Error = interruptedMessage
		}
	} else {
		j.Status = store.JobSucceeded
	}
	// The job's end is recorded even when the service is closing (the
	// store closes after the service).
	if aerr := s.cfg.Store.Apply(context.Background(), store.UpdateJob{Job: j}); aerr != nil {
		s.log.Error("record job end", "job", j.ID, "kind", j.Kind, "instance", in.Key, "err", aerr)
	}
	if err != nil {
		s.log.Info("job failed", "job", j.ID, "kind", j.Kind, "instance", in.Key, "err", err)
	} else {
		s.log.Info("job succeeded", "job", j.ID, "kind", j.Kind, "instance", in.Key, "details", j.Details)
	}
	s.jobEnded(j.Kind, j.Status, began)
}

func (s *Service) jobEnded(kind, status string, began time.Time) {
	if s.cfg.OnJobEnd != nil {
		s.cfg.OnJobEnd(kind, status, time.Since(began))
	}
}

// message is what a Failed job says: the error's own words when they are
// meant for the user (storage errors, backup format errors, domain
// faults), else a generic sentence (the detail goes to the log).
func (s *Service) message(j store.Job, err error) string {
	var ce errClient
	var be *blob.Error
	switch fe, ok := fault.As(err); {
	case errors.As(err, &ce):
		return ce.msg
	case ok && fe.Kind != fault.Internal:
		return fe.Message
	case errors.As(err, &be):
		return strings.TrimPrefix(be.Error(), "blob: ")
	case errors.Is(err, ErrOtherDomain), errors.Is(err, ErrIncomplete), errors.Is(err, ErrMalformed), errors.Is(err, ErrTampered):
		return err.Error()
	}
	s.log.Error("job error", "job", j.ID, "kind", j.Kind, "err", err)
	return "the job met an internal error; the server log has the detail (job " + j.ID + ")"
}

// backupStart returns the start time of a new backup of instance: t, or
// later when needed so that its folder name (which has hundredths of a
// second) differs from the previous backup's in this process. A folder
// that exists anyway (a backup of another process) is refused before
// anything is written.
func (s *Service) backupStart(instance string, t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastBackup[instance]; ok {
		if min := last.Truncate(10 * time.Millisecond).Add(10 * time.Millisecond); t.Before(min) {
			t = min
		}
	}
	s.lastBackup[instance] = t
	return t
}

// open opens the destination's container.
func (s *Service) open(ctx context.Context, loc location) (blob.Store, error) {
	return container.Open(ctx, loc.containerURI, loc.token)
}

// StartBackup starts a full backup of in to d and returns the job.
func (s *Service) StartBackup(ctx context.Context, in instances.Instance, d Destination) (Job, error) {
	loc, err := s.resolve(d, "")
	if err != nil {
		return Job{}, err
	}
	j, _, err := s.startBackup(ctx, in, loc)
	return j, err
}

// startBackup starts a backup job to a resolved destination.
func (s *Service) startBackup(ctx context.Context, in instances.Instance, loc location) (Job, <-chan struct{}, error) {
	return s.startJob(ctx, in, KindBackup, true, func(ctx context.Context, j *store.Job, report func()) error {
		folder := FolderName(in.Key, j.Start)
		bs, err := s.open(ctx, loc)
		if err != nil {
			return err
		}
		h, err := s.writeBackup(ctx, in, bs, loc, folder, func(done, total int) {
			j.Done, j.Total = done, total
			report()
		})
		if err != nil {
			return err
		}
		j.Result = loc.given + "/" + folder
		j.Details = "backed up " + h.summary()
		return nil
	})
}

// StartPreBackup checks that a backup to d could be written (the
// container exists and the token allows writing) without backing up.
func (s *Service) StartPreBackup(ctx context.Context, in instances.Instance, d Destination) (Job, error) {
	loc, err := s.resolve(d, "")
	if err != nil {
		return Job{}, err
	}
	return s.start(ctx, in, KindPreBackup, false, func(ctx context.Context, j *store.Job, _ func()) error {
		bs, err := s.open(ctx, loc)
		if err != nil {
			return err
		}
		if err := blob.Check(ctx, bs, true); err != nil {
			return err
		}
		j.Details = "the storage can receive a backup"
		return nil
	})
}

// splitFolder splits a resolved folder path into its parent path and name.
func splitFolder(loc location) (location, string, error) {
	if loc.path == "" {
		return loc, "", fault.New(fault.BadParameter, "BadParameter", "folderToRestore is required: the backup's folder (mhsm-{name}-{time}) in the container")
	}
	dir, name := path.Split(loc.path)
	loc.path = strings.TrimSuffix(dir, "/")
	if !ValidFolder(name) {
		return loc, "", fault.New(fault.BadParameter, "BadParameter", "'%s' is not the name of a backup folder: Tresor's folders are named mhsm-{name}-{yyyyMMddHHmmssff}", name)
	}
	return loc, name, nil
}

// resolveFolder resolves a destination and the folder to restore from it.
func (s *Service) resolveFolder(d Destination, folder string) (location, string, error) {
	loc, err := s.resolve(d, folder)
	if err != nil {
		return location{}, "", err
	}
	return splitFolder(loc)
}

// openedFolder is a backup folder whose manifest was read and authenticated.
type openedFolder struct {
	loc    location
	name   string
	root   *barrier.RootKey
	bs     blob.Store
	header Header
	index  map[string]string
}

// openFolder opens the container of a folder and authenticates its
// manifest with the security domain of in.
func (s *Service) openFolder(ctx context.Context, in instances.Instance, loc location, name string) (openedFolder, error) {
	root, err := s.cfg.Keyring.Root(in)
	if err != nil {
		return openedFolder{}, err
	}
	bs, err := s.open(ctx, loc)
	if err != nil {
		return openedFolder{}, err
	}
	h, index, err := s.readManifest(ctx, bs, loc, name, root)
	if err != nil {
		return openedFolder{}, err
	}
	return openedFolder{loc: loc, name: name, root: root, bs: bs, header: h, index: index}, nil
}

// readManifest reads and authenticates the manifest of a folder.
func (s *Service) readManifest(ctx context.Context, bs blob.Store, loc location, folder string, root *barrier.RootKey) (Header, map[string]string, error) {
	data, err := bs.Get(ctx, loc.join(folder+"/"+ManifestName), MaxManifestSize)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return Header{}, nil, fmt.Errorf("folder %s: %w", folder, ErrIncomplete)
	case errors.Is(err, blob.ErrTooLarge):
		return Header{}, nil, fmt.Errorf("folder %s: the manifest is too large: %w", folder, ErrMalformed)
	case err != nil:
		return Header{}, nil, err
	}
	h, index, err := openManifest(root, folder, data)
	if err != nil {
		return Header{}, nil, fmt.Errorf("folder %s: %w", folder, err)
	}
	return h, index, nil
}

// readObject reads an object of a folder and opens it.
func readObject(ctx context.Context, bs blob.Store, b *barrier.Barrier, loc location, folder string, o ObjectInfo) ([]byte, error) {
	data, err := bs.Get(ctx, loc.join(folder+"/"+o.Name), o.Size)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return nil, fmt.Errorf("object %s of the backup is missing: %w", o.Name, ErrTampered)
	case errors.Is(err, blob.ErrTooLarge):
		return nil, fmt.Errorf("object %s: its size differs from the manifest's: %w", o.Name, ErrTampered)
	case err != nil:
		return nil, err
	}
	return openObject(b, o, data)
}

// StartPreRestore checks that folder of d can be restored into in (the
// storage is readable, the manifest is there and opens with in's
// security domain) without restoring.
func (s *Service) StartPreRestore(ctx context.Context, in instances.Instance, d Destination, folder string) (Job, error) {
	loc, name, err := s.resolveFolder(d, folder)
	if err != nil {
		return Job{}, err
	}
	return s.start(ctx, in, KindPreRestore, false, func(ctx context.Context, j *store.Job, _ func()) error {
		f, err := s.openFolder(ctx, in, loc, name)
		if err != nil {
			return err
		}
		h := f.header
		j.Details = fmt.Sprintf("the folder %s holds a backup of %s with %d keys that this HSM can restore", name, h.SourceHSM, h.Keys)
		return nil
	})
}

// decodeJSONStrict decodes an object's plaintext.
func decodeObject(pt []byte, v any, name string) error {
	if err := json.Unmarshal(pt, v); err != nil {
		return fmt.Errorf("object %s: %w", name, ErrMalformed)
	}
	return nil
}

// summary says what a backup holds, in words.
func (h Header) summary() string {
	return fmt.Sprintf("%s (%s, %s), %s, %s and %s",
		count(h.Keys, "key"), count(h.Versions, "version"), count(h.DeletedKeys, "deleted key"),
		count(h.RoleAssignments, "role assignment"), count(h.RoleDefinitions, "custom role"), count(h.Settings, "setting"))
}

// count is n and the noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Job is a backup or restore job as the store keeps it.
type Job = store.Job
