package backup

// Scheduled backups with retention (Tresor's extension; Managed HSM leaves
// them to scripts): an instance's backup policy names a container, its SAS
// token, an interval and how many complete folders to keep. The runner
// ([Service.RunPolicies]) backs the instance up on time, as an ordinary
// backup job, then deletes the folders older than the newest Keep complete
// ones. docs/backup-format.md, "Scheduled backups", describes the rules.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"tresor/internal/blob"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/store"
)

// Limits of a backup policy.
const (
	// MinInterval and MaxInterval bound a policy's interval.
	MinInterval = time.Second
	MaxInterval = 366 * 24 * time.Hour
	// MaxKeep bounds how many complete folders a policy keeps.
	MaxKeep = 1000
)

// Timing of the runner.
const (
	// busyRetry is how soon a run that found another job of the instance
	// running tries again (or the interval, if shorter). A failure is
	// recorded only when the instance stays busy for a whole interval.
	busyRetry = 10 * time.Second
	// idleWait is how long the runner sleeps when nothing is scheduled
	// sooner (a set or deleted policy wakes it at once).
	idleWait = time.Minute
)

// Codes of a policy's lastFailure.
const (
	CodeBackupFailed     = "BackupFailed"     // the backup job failed
	CodeRetentionFailed  = "RetentionFailed"  // the backup succeeded, deleting old folders did not
	CodeBackupNotStarted = "BackupNotStarted" // no job could start (busy HSM, expired SAS, HSM not active, …)
)

// Policy is the configuration of an instance's scheduled backups. Token is
// a secret: a Policy never prints it (String, GoString, Format redact it).
type Policy struct {
	StorageURI string
	Token      string
	Every      time.Duration
	Keep       int
	Enabled    bool
}

const redactedPolicy = "backup.Policy{REDACTED}"

// String implements fmt.Stringer without the token.
func (Policy) String() string { return redactedPolicy }

// GoString implements fmt.GoStringer without the token.
func (Policy) GoString() string { return redactedPolicy }

// Format prints the policy without its token, whatever the verb.
func (Policy) Format(f fmt.State, _ rune) { io.WriteString(f, redactedPolicy) }

// sealedPolicy is the plaintext of a stored policy's Sealed field.
type sealedPolicy struct {
	StorageURI string `json:"storageResourceUri"`
	Token      string `json:"token"`
	Every      int64  `json:"every"` // nanoseconds
	Keep       int    `json:"keep"`
	Enabled    bool   `json:"enabled"`
}

// Run is one run of a policy, as its status keeps it.
type Run = store.BackupRun

// PolicyStatus is a policy as the API shows it: everything but the token,
// and the status of its runs.
type PolicyStatus struct {
	StorageURI string
	Every      time.Duration
	Keep       int
	Enabled    bool
	// TokenExpiry is the SAS token's expiry (its se= field), if it has one.
	TokenExpiry time.Time
	Set         time.Time
	store.BackupPolicyStatus
}

// ParseInterval parses a policy's interval: a Go duration ("6h", "90m",
// "2s") or an ISO 8601 duration with days, hours, minutes and seconds
// ("PT6H", "P1DT12H", "P2W"). It must be a whole number of seconds; bounds
// ([MinInterval], [MaxInterval]) are checked by the service. Numbers that
// overflow are refused.
func ParseInterval(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if strings.HasPrefix(s, "P") {
		d, err = parseISODuration(s)
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			err = fmt.Errorf("%q is neither a duration such as 6h or 90m nor an ISO 8601 duration such as PT6H", s)
		}
	}
	if err != nil {
		return 0, err
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("%q is not a whole number of seconds", s)
	}
	return d, nil
}

// maxParsed bounds what ParseInterval adds up (ten times MaxInterval).
const maxParsed = 10 * MaxInterval

// parseISODuration parses PnW, or PnDTnHnMnS with any of the parts.
func parseISODuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO 8601 duration such as PT6H or P1D (weeks, days, hours, minutes, seconds)", s)
	rest := s[1:]
	if rest == "" {
		return 0, bad
	}
	units := []struct {
		c   byte
		u   time.Duration
		inT bool
	}{{'W', 7 * 24 * time.Hour, false}, {'D', 24 * time.Hour, false}, {'H', time.Hour, true}, {'M', time.Minute, true}, {'S', time.Second, true}}
	var d time.Duration
	next, inT := 0, false
	for rest != "" {
		if rest[0] == 'T' {
			if inT || len(rest) == 1 {
				return 0, bad
			}
			inT, rest = true, rest[1:]
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 12 {
			return 0, bad
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, bad
		}
		k := next
		for k < len(units) && (units[k].c != rest[i] || units[k].inT != inT) {
			k++
		}
		if k == len(units) {
			return 0, bad
		}
		// Far beyond MaxInterval (which the service checks): refused
		// before the sum can overflow.
		if n > int64(maxParsed/units[k].u) || d > maxParsed {
			return 0, fmt.Errorf("%q is far too long: at most %s", s, FormatInterval(MaxInterval))
		}
		d += time.Duration(n) * units[k].u
		next, rest = k+1, rest[i+1:]
	}
	if strings.HasSuffix(s, "T") {
		return 0, bad
	}
	return d, nil
}

// FormatInterval writes d (whole seconds) as ISO 8601, in days, hours,
// minutes and seconds: PT6H, P1DT12H, PT2S. ParseInterval reads it back.
func FormatInterval(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteByte('P')
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d > 0 {
		b.WriteByte('T')
		for _, u := range []struct {
			c string
			u time.Duration
		}{{"H", time.Hour}, {"M", time.Minute}, {"S", time.Second}} {
			if n := d / u.u; n > 0 {
				fmt.Fprintf(&b, "%d%s", n, u.c)
				d -= n * u.u
			}
		}
	}
	return b.String()
}

// sasExpiry returns the expiry (se=) of a SAS token, if it has a readable one.
func sasExpiry(token string) (time.Time, bool) {
	q, err := url.ParseQuery(strings.TrimPrefix(token, "?"))
	if err != nil {
		return time.Time{}, false
	}
	se := q.Get("se")
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(layout, se); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func policyNotFound(in instances.Instance) error {
	return fault.New(fault.NotFound, "BackupPolicyNotFound",
		"the managed HSM '%s' has no backup policy; set one with PUT /backup/policy (tresor backup policy set)", in.Name)
}

func badPolicy(format string, args ...any) error {
	return fault.New(fault.BadParameter, "BadParameter", format, args...)
}

// policyAAD is the barrier path a stored policy is sealed under: bound to
// its instance and to the policy's id.
func policyAAD(instance, id string) string { return "backup-policy/" + instance + "/" + id }

// checkPolicy validates p for in: what a manual backup to the same place
// needs, and the policy's own bounds.
func (s *Service) checkPolicy(in instances.Instance, p Policy) error {
	if in.ActivationStatus != instances.Active {
		return fault.New(fault.Conflict, "HSMNotActivated", "the managed HSM '%s' is not activated: download its security domain before setting a backup policy", in.Name)
	}
	switch {
	case p.Every < MinInterval:
		return badPolicy("every must be at least 1 second (PT1S), got %s", FormatInterval(p.Every))
	case p.Every > MaxInterval:
		return badPolicy("every must be at most 366 days (P366D), got %s", FormatInterval(p.Every))
	case p.Keep < 1 || p.Keep > MaxKeep:
		return badPolicy("keep must be between 1 and %d complete backup folders, got %d", MaxKeep, p.Keep)
	case strings.TrimPrefix(strings.TrimSpace(p.Token), "?") == "":
		return badPolicy("token is required: the SAS token of the container (scheduled backups need the permissions c, r, w, d and l: l and d for deleting old folders)")
	}
	if _, err := s.resolve(Destination{StorageURI: p.StorageURI, Token: p.Token}, ""); err != nil {
		return err
	}
	if exp, ok := sasExpiry(p.Token); ok && !exp.After(s.cfg.Now()) {
		return badPolicy("the SAS token expired at %s (its se= field): give a token valid for as long as the policy should run", exp.Format(time.RFC3339))
	}
	return nil
}

// SetPolicy sets (or replaces) the backup policy of in. The status of a
// replaced policy is dropped. The first scheduled backup runs at once:
// a destination that does not work shows in the status within seconds,
// not one interval later; the next ones follow every p.Every.
func (s *Service) SetPolicy(ctx context.Context, in instances.Instance, p Policy) (PolicyStatus, error) {
	if s.cfg.Region == nil {
		return PolicyStatus{}, errors.New("backup: no region barrier: backup policies are not configured")
	}
	if err := s.checkPolicy(in, p); err != nil {
		return PolicyStatus{}, err
	}
	p.StorageURI = strings.TrimRight(p.StorageURI, "/")
	id := newJobID()
	pt, err := json.Marshal(sealedPolicy{StorageURI: p.StorageURI, Token: p.Token, Every: int64(p.Every), Keep: p.Keep, Enabled: p.Enabled})
	if err != nil {
		return PolicyStatus{}, err
	}
	sealed, err := s.cfg.Region.Seal(policyAAD(in.Key, id), pt)
	if err != nil {
		return PolicyStatus{}, err
	}
	now := s.cfg.Now().UTC()
	rec := store.BackupPolicy{Instance: in.Key, ID: id, Sealed: sealed, Set: now}
	if p.Enabled {
		rec.Status.NextRun = now
	}
	if err := s.cfg.Store.Apply(ctx, store.PutBackupPolicy{Policy: rec}); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return PolicyStatus{}, instances.NotFound(in.Name)
		}
		return PolicyStatus{}, err
	}
	s.log.Info("backup policy set", "instance", in.Key, "every", FormatInterval(p.Every), "keep", p.Keep, "enabled", p.Enabled)
	s.wakeRunner()
	return s.status(rec, p), nil
}

// GetPolicy returns the backup policy of in, without its token.
func (s *Service) GetPolicy(ctx context.Context, in instances.Instance) (PolicyStatus, error) {
	rec, err := s.readPolicy(ctx, in.Key)
	if errors.Is(err, store.ErrNotFound) {
		return PolicyStatus{}, policyNotFound(in)
	}
	if err != nil {
		return PolicyStatus{}, err
	}
	p, err := s.openPolicy(rec)
	if err != nil {
		return PolicyStatus{}, err
	}
	return s.status(rec, p), nil
}

// DeletePolicy removes the backup policy of in; a scheduled backup that
// runs at that moment finishes, but records nothing and deletes nothing.
func (s *Service) DeletePolicy(ctx context.Context, in instances.Instance) error {
	err := s.cfg.Store.Apply(ctx, store.DeleteBackupPolicy{Instance: in.Key})
	if errors.Is(err, store.ErrNotFound) {
		return policyNotFound(in)
	}
	if err == nil {
		s.log.Info("backup policy deleted", "instance", in.Key)
		s.wakeRunner()
	}
	return err
}

func (s *Service) readPolicy(ctx context.Context, instance string) (store.BackupPolicy, error) {
	var rec store.BackupPolicy
	err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		var err error
		rec, err = r.BackupPolicy(instance)
		return err
	})
	return rec, err
}

func (s *Service) openPolicy(rec store.BackupPolicy) (Policy, error) {
	if s.cfg.Region == nil {
		return Policy{}, errors.New("backup: no region barrier: backup policies are not configured")
	}
	pt, err := s.cfg.Region.Open(policyAAD(rec.Instance, rec.ID), rec.Sealed)
	if err != nil {
		return Policy{}, fmt.Errorf("backup: the backup policy of %s does not open: %w", rec.Instance, err)
	}
	var sp sealedPolicy
	if err := json.Unmarshal(pt, &sp); err != nil {
		return Policy{}, fmt.Errorf("backup: the backup policy of %s is malformed: %w", rec.Instance, err)
	}
	return Policy{StorageURI: sp.StorageURI, Token: sp.Token, Every: time.Duration(sp.Every), Keep: sp.Keep, Enabled: sp.Enabled}, nil
}

func (s *Service) status(rec store.BackupPolicy, p Policy) PolicyStatus {
	ps := PolicyStatus{StorageURI: p.StorageURI, Every: p.Every, Keep: p.Keep, Enabled: p.Enabled, Set: rec.Set, BackupPolicyStatus: rec.Status}
	if exp, ok := sasExpiry(p.Token); ok {
		ps.TokenExpiry = exp
	}
	return ps
}

func (s *Service) wakeRunner() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunPolicies carries out the backup policies on time until ctx ends or
// the service closes: it sleeps until the earliest next run (or until a
// policy is set or deleted), then runs [Service.RunDuePolicies].
func (s *Service) RunPolicies(ctx context.Context) {
	for {
		next := s.RunDuePolicies(ctx)
		wait := idleWait
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// RunDuePolicies runs every enabled policy whose next run is due at the
// service's clock, one after the other, each to its end (backup and
// retention), and returns the earliest next run of all policies (zero if
// none is scheduled). A policy whose runs were missed (the server was
// down) runs once, then every interval from then on. Concurrent calls run
// one at a time, so a due policy runs once. The runner calls it; tests
// call it with a fake clock.
func (s *Service) RunDuePolicies(ctx context.Context) time.Time {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	var recs []store.BackupPolicy
	err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.BackupPolicies()
		return err
	})
	if err != nil {
		if ctx.Err() == nil && s.ctx.Err() == nil {
			s.log.Error("read backup policies", "err", err)
		}
		return time.Time{}
	}
	var next time.Time
	for _, rec := range recs {
		if ctx.Err() != nil || s.ctx.Err() != nil {
			return time.Time{}
		}
		n := rec.Status.NextRun
		if !n.IsZero() && !n.After(s.cfg.Now()) {
			n = s.runPolicy(ctx, rec)
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// runPolicy runs one due policy and records its outcome; it returns the
// policy's next run.
func (s *Service) runPolicy(ctx context.Context, rec store.BackupPolicy) time.Time {
	start := s.cfg.Now().UTC()
	st := rec.Status
	p, err := s.openPolicy(rec)
	if err != nil {
		s.log.Error("scheduled backup", "instance", rec.Instance, "err", err)
		st.LastFailure = &store.BackupRun{Time: start, Code: CodeBackupNotStarted, Message: "the backup policy does not open on this region; set it again"}
		st.NextRun = start.Add(idleWait)
		return s.record(rec, st)
	}
	// after is the next run after this one: one interval after the due
	// time, or after now when runs were missed.
	after := func() time.Time {
		now := s.cfg.Now().UTC()
		if n := rec.Status.NextRun.Add(p.Every); n.After(now) {
			return n
		}
		return now.Add(p.Every)
	}
	fail := func(code, jobID, msg string) time.Time {
		s.log.Error("scheduled backup failed", "instance", rec.Instance, "code", code, "job", jobID, "reason", msg)
		st.LastFailure = &store.BackupRun{Time: s.cfg.Now().UTC(), JobID: jobID, Code: code, Message: msg}
		st.BusySince = time.Time{}
		st.NextRun = after()
		return s.record(rec, st)
	}
	in, err := s.cfg.Instances.Get(ctx, rec.Instance)
	switch {
	case fault.KindOf(err) == fault.NotFound:
		// Soft-deleted: no backups until it is recovered (purge removes the policy).
		s.log.Info("scheduled backup skipped: the HSM is deleted", "instance", rec.Instance)
		st.NextRun = after()
		return s.record(rec, st)
	case err != nil:
		return fail(CodeBackupNotStarted, "", "the HSM could not be read; the server log has the detail")
	case in.ActivationStatus != instances.Active:
		return fail(CodeBackupNotStarted, "", fmt.Sprintf("the managed HSM '%s' is not active (%s)", in.Name, in.ActivationStatus))
	}
	if exp, ok := sasExpiry(p.Token); ok && !exp.After(start) {
		return fail(CodeBackupNotStarted, "", fmt.Sprintf("the SAS token of the backup policy expired at %s: set the policy again with a new token", exp.Format(time.RFC3339)))
	}
	loc, err := s.resolve(Destination{StorageURI: p.StorageURI, Token: p.Token}, "")
	if err != nil {
		return fail(CodeBackupNotStarted, "", s.message(store.Job{}, err))
	}
	j, done, err := s.startBackup(ctx, in, loc)
	if fault.KindOf(err) == fault.Conflict {
		// Another backup or restore runs: try again soon; fail only when
		// the HSM stays busy for a whole interval.
		if st.BusySince.IsZero() {
			st.BusySince = start
		}
		if start.Sub(st.BusySince) >= p.Every {
			return fail(CodeBackupNotStarted, "", fmt.Sprintf("the scheduled backup could not start: other backup or restore jobs have kept the HSM busy since %s", st.BusySince.Format(time.RFC3339)))
		}
		s.log.Info("scheduled backup postponed: another job runs", "instance", rec.Instance)
		st.NextRun = start.Add(min(busyRetry, p.Every))
		return s.record(rec, st)
	}
	if err != nil {
		return fail(CodeBackupNotStarted, "", s.message(store.Job{}, err))
	}
	st.BusySince = time.Time{}
	select {
	case <-done:
	case <-ctx.Done():
		return time.Time{} // the job ends as interrupted; the next start runs the policy again
	}
	if s.ctx.Err() != nil {
		return time.Time{}
	}
	if err := s.cfg.Store.View(ctx, func(r store.Reader) error {
		var err error
		j, err = r.Job(j.ID)
		return err
	}); err != nil {
		return fail(CodeBackupFailed, j.ID, "the job's outcome could not be read; the server log has the detail")
	}
	if j.Status != store.JobSucceeded {
		return fail(CodeBackupFailed, j.ID, j.Error)
	}
	folder := FolderName(in.Key, j.Start)
	st.LastSuccess = &store.BackupRun{Time: j.End, JobID: j.ID, Folder: folder}
	// Retention: only for the policy still in place (a policy deleted or
	// replaced during the run deletes nothing).
	if cur, err := s.readPolicy(ctx, rec.Instance); err != nil || cur.ID != rec.ID {
		s.log.Info("scheduled backup: the policy changed during the run; no retention", "instance", rec.Instance, "job", j.ID)
		return time.Time{}
	}
	bs, err := s.open(ctx, loc)
	if err == nil {
		st.DeletedFolders, err = s.retain(ctx, bs, loc, in.Key, p.Keep)
	}
	if err != nil {
		return fail(CodeRetentionFailed, j.ID, "the backup succeeded, but deleting older folders failed: "+s.message(j, err))
	}
	s.log.Info("scheduled backup succeeded", "instance", rec.Instance, "job", j.ID, "folder", folder, "deletedFolders", st.DeletedFolders)
	st.LastFailure = nil
	st.NextRun = after()
	return s.record(rec, st)
}

// record stores the status of a run of rec and returns its next run. A
// policy deleted or replaced meanwhile is left alone.
func (s *Service) record(rec store.BackupPolicy, st store.BackupPolicyStatus) time.Time {
	// Recorded even while the service closes (the store closes after it).
	err := s.cfg.Store.Apply(context.Background(), store.RecordBackupRun{Instance: rec.Instance, ID: rec.ID, Status: st})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		s.log.Info("scheduled backup: the policy changed during the run", "instance", rec.Instance)
		return time.Time{}
	case err != nil:
		s.log.Error("record a scheduled backup", "instance", rec.Instance, "err", err)
		return time.Time{}
	}
	return st.NextRun
}

// retain deletes the folders of instance in the container that are older
// than the newest keep complete ones, and returns how many it deleted.
// Only folders named exactly mhsm-{instance}-{yyyyMMddHHmmssff} count; a
// folder is complete when it has a manifest. A folder older than the
// oldest kept one is deleted whether complete or not (its manifest first,
// so a deletion cut short leaves an incomplete folder, never a complete
// one that lacks objects); nothing newer than the oldest kept folder is
// deleted (an incomplete one may be a backup in progress). With fewer
// than keep complete folders nothing is deleted.
func (s *Service) retain(ctx context.Context, bs blob.Store, loc location, instance string, keep int) (int, error) {
	base := loc.join("") // "" or "{path}/"
	prefix := "mhsm-" + instance + "-"
	objs, err := bs.List(ctx, base+prefix)
	if err != nil {
		return 0, err
	}
	folders := map[string][]string{}
	var complete []string
	for _, o := range objs {
		folder, obj, ok := strings.Cut(strings.TrimPrefix(o.Name, base), "/")
		if !ok || obj == "" || !isFolderOf(folder, instance) {
			continue
		}
		folders[folder] = append(folders[folder], o.Name)
		if obj == ManifestName {
			complete = append(complete, folder)
		}
	}
	if len(complete) <= keep {
		return 0, nil
	}
	// Same prefix, fixed-width time: name order is time order.
	slices.SortFunc(complete, func(a, b string) int { return cmp.Compare(b, a) })
	oldestKept := complete[keep-1]
	var old []string
	for f := range folders {
		if f < oldestKept {
			old = append(old, f)
		}
	}
	slices.Sort(old)
	deleted := 0
	for _, f := range old {
		names := folders[f]
		manifest := base + f + "/" + ManifestName
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(-cmp.Compare(boolInt(a == manifest), boolInt(b == manifest)), cmp.Compare(a, b))
		})
		for _, n := range names {
			if err := bs.Delete(ctx, n); err != nil {
				return deleted, err
			}
		}
		deleted++
	}
	return deleted, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isFolderOf reports whether folder is a backup folder of instance:
// mhsm-{instance}-{16 digits}, and nothing else (mhsm-{instance}-b-… is
// instance "{instance}-b"'s).
func isFolderOf(folder, instance string) bool {
	ts, ok := strings.CutPrefix(folder, "mhsm-"+instance+"-")
	if !ok || len(ts) != 16 {
		return false
	}
	for i := range len(ts) {
		if ts[i] < '0' || ts[i] > '9' {
			return false
		}
	}
	return true
}
