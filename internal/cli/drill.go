package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/blob"
	"tresor/internal/blob/container"
	"tresor/internal/client"
	"tresor/internal/securitydomain"
	"tresor/internal/wire"
)

// A restore drill proves that a backup folder can be restored: it recovers
// the security domain into a scratch HSM, restores the folder into it,
// checks what it holds against the manifest and uses a key of each type,
// then deletes and purges the scratch HSM. Every step is timed and
// reported; cleanup runs whatever happened before it.

// Drill step names, in the order they run.
const (
	stepManifest      = "read-manifest"
	stepCreate        = "create-scratch"
	stepInitRecovery  = "init-recovery"
	stepRestoreBlob   = "build-upload-blob"
	stepUpload        = "upload-security-domain"
	stepActivate      = "wait-active"
	stepRollback      = "rollback-backup"
	stepRestore       = "restore"
	stepVerifyPolicy  = "verify-role-assignments"
	stepVerifyKeys    = "verify-keys"
	stepVerifyCrypto  = "verify-key-operations"
	stepDelete        = "delete-scratch"
	stepPurge         = "purge-scratch"
	stepDeleteBackups = "delete-rollback-backup"
)

// Step statuses of a drill report.
const (
	drillPass    = "pass"
	drillFail    = "fail"
	drillSkipped = "skipped"
	drillWarning = "warning" // a cleanup that could not finish; the drill still passes
)

// drillRetentionDays is the scratch HSM's soft-delete retention: the
// shortest Managed HSM allows (it is purged at once anyway).
const drillRetentionDays = 7

// drillCleanupTimeout bounds the cleanup, which runs on a context of its
// own so that an interrupted drill still deletes its scratch HSM.
const drillCleanupTimeout = 5 * time.Minute

// Built-in roles a drill may assign itself in the restored scratch HSM to
// read and use its keys, when the backup's role assignments let it assign
// roles but grant it no such role.
var (
	drillCryptoUser    = drillRole{name: "Managed HSM Crypto User", guid: "21dbd100-6940-42c2-9190-5d6cb909625b"}
	drillCryptoOfficer = drillRole{name: "Managed HSM Crypto Officer", guid: "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"}
)

type drillRole struct{ name, guid string }

// scratchNameRE is Managed HSM's name rule: 3 to 24 letters, digits and
// hyphens, starting with a letter, ending with a letter or digit, no "--".
var scratchNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// drillReport is what restore drill prints.
type drillReport struct {
	Result          string               `json:"result"`
	Folder          string               `json:"folder"`
	ScratchInstance string               `json:"scratchInstance"`
	DurationMs      int64                `json:"durationMs"`
	Steps           []drillStep          `json:"steps"`
	Counts          map[string]drillPair `json:"counts"`
}

type drillStep struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	DurationMs int64  `json:"durationMs"`
	Detail     string `json:"detail"`
}

// drillPair is a count the manifest gives and the one found in the
// restored HSM (null until verified).
type drillPair struct {
	Expected int  `json:"expected"`
	Found    *int `json:"found"`
}

// drillFlags are restore drill's own flags.
type drillFlags struct {
	storage       storageFlags
	folder        string
	sd            restoreInput
	regionServer  string
	resourceGroup string
	location      string
	scratch       string
	keepOnFailure bool
}

func (a *app) restoreDrillCommand() *cobra.Command {
	var fl drillFlags
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Prove that a backup folder restores: into a scratch HSM that is purged afterwards (Tresor's own)",
		Long: `Run a restore drill of the backup folder --backup-folder: create a scratch HSM
(the signed-in principal its administrator, retention 7 days), recover the
security domain into it from --sd-file and a quorum of the custodians'
private keys (--sd-wrapping-keys; the blob is built on this machine), take
the rollback backup a full restore needs (into the same container), restore
the folder, and check the result against the folder's manifest: the numbers
of keys, deleted keys, versions, role assignments and custom role
definitions, and a sign/verify (RSA, EC) or wrap/unwrap (AES) with one
enabled key of each type. Deleted keys are recovered in the scratch HSM to
count their versions. Then the scratch HSM is deleted and purged, and the
rollback backup deleted, also when a step failed or the drill was
interrupted (unless --keep-on-failure).

The restored role assignments are the backup's: to read and use keys the
drill needs Managed HSM Crypto User and Crypto Officer rights there. If the
backup grants the signed-in principal a role that may assign roles (e.g.
Managed HSM Administrator) but not those, the drill assigns them to itself
in the scratch HSM after counting; otherwise the verify steps fail and say
which right is missing.

Prints a report, one row per step with its status (pass, fail, skipped,
warning) and duration, and exits with code 1 if the drill failed.
The signed-in principal must be a region administrator (to create HSMs).`,
		Example: `  tresor restore drill --storage-resource-uri file:///var/backups/tresor -t x \
    --backup-folder mhsm-contosomhsm-2026041915243012 \
    --sd-file ContosoMHSM-SD.json --sd-wrapping-keys cert_0.key cert_1.key -o table`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fl.check(cmd); err != nil {
				return err
			}
			cfg, err := a.clientConfig()
			if err != nil {
				return err
			}
			if fl.regionServer != "" && !sameServer(fl.regionServer, cfg.Server) {
				cfg.Server = fl.regionServer
				cfg.Tokens = nil // the profile's tokens are for the signed-in region
			}
			c, err := client.New(cfg)
			if err != nil {
				return err
			}
			d := &drill{a: a, c: c, fl: fl, granted: map[string]bool{}}
			rep := d.run(cmd.Context())
			if err := a.print(rep, drillTable); err != nil {
				return err
			}
			if d.failed != nil {
				return fmt.Errorf("drill failed: %s: %s", d.failed.Name, d.failed.Detail)
			}
			return nil
		},
	}
	fl.storage.addFlags(cmd, false)
	f := cmd.Flags()
	f.StringVar(&fl.folder, "backup-folder", "", "the backup folder to drill, mhsm-{name}-{time} (required)")
	f.StringVar(&fl.sd.sdFile, "sd-file", "", "the security-domain file of the HSM the backup was made of (required)")
	f.StringArrayVar(&fl.sd.wrappingKeys, "sd-wrapping-keys", nil,
		"custodians' private keys (PEM), at least the quorum, space-separated; each one's certificate must be next to it with the extension .cer (required)")
	f.StringArrayVar(&fl.sd.passwords, "passwords", nil, "passwords of encrypted private keys, space-separated, in the order of --sd-wrapping-keys (\"\" for a key without one)")
	f.StringVar(&fl.regionServer, "region-endpoint", "", "the region to drill in (default: the signed-in region); its identity must accept the credentials")
	resourceGroupFlag(cmd, &fl.resourceGroup, "resource group of the scratch HSM")
	f.Lookup("resource-group").DefValue = "tresor-drill"
	fl.resourceGroup = "tresor-drill"
	f.StringVarP(&fl.location, "location", "l", "", "location of the scratch HSM (default: the region's name)")
	f.StringVar(&fl.scratch, "scratch-name", "", "name of the scratch HSM (default: drill-{random}); it must not exist")
	optBoolVar(f, &fl.keepOnFailure, "keep-on-failure", "keep the scratch HSM (and the rollback backup) if the drill fails, to look into it; delete and purge it yourself")
	markNargs(f, "sd-wrapping-keys", "passwords")
	return cmd
}

// check validates the flags before anything runs.
func (fl *drillFlags) check(cmd *cobra.Command) error {
	if err := fl.storage.check(cmd); err != nil {
		return err
	}
	fl.folder = strings.Trim(fl.folder, "/")
	switch {
	case fl.folder == "":
		return usagef(cmd, "the following arguments are required: --backup-folder")
	case fl.sd.sdFile == "":
		return usagef(cmd, "--sd-file is required: the security-domain file of the backed-up HSM")
	case len(fl.sd.wrappingKeys) == 0:
		return usagef(cmd, "Please specify --sd-wrapping-keys: the custodians' private keys, at least the quorum")
	case len(fl.sd.passwords) > len(fl.sd.wrappingKeys):
		return usagef(cmd, "--passwords: %d passwords for %d wrapping keys", len(fl.sd.passwords), len(fl.sd.wrappingKeys))
	case fl.resourceGroup == "":
		return usagef(cmd, "--resource-group is empty")
	}
	if fl.regionServer != "" {
		if _, err := parseHSMID(fl.regionServer); err != nil {
			return usagef(cmd, "--region-endpoint %q: want https://{host}[:port]", fl.regionServer)
		}
	}
	if fl.scratch == "" {
		fl.scratch = "drill-" + randomLower(8)
	}
	if !scratchNameRE.MatchString(fl.scratch) || strings.Contains(fl.scratch, "--") {
		return usagef(cmd, "--scratch-name %q: an HSM name has 3 to 24 letters, digits and single hyphens, starts with a letter and ends with a letter or digit", fl.scratch)
	}
	return nil
}

// randomLower returns n random lowercase letters and digits.
func randomLower(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// drill is one run of restore drill.
type drill struct {
	a  *app
	c  *client.Client
	fl drillFlags

	rep    drillReport
	failed *drillStep // the first step that failed
	halted bool       // a step the rest depends on failed

	header   manifestHeader
	store    blob.Store // the container
	contURI  string     // its URI
	prefix   string     // the folder's parent path in the container ("" or "x/")
	oid      string     // the signed-in principal
	location string
	hsmURL   string
	created  bool // the scratch HSM may exist: clean it up
	exchange []byte
	upload   []byte
	rollback string // the rollback backup's folder, once taken

	granted map[string]bool // roles the drill assigned itself
	grants  []string
	active  []wire.KeyItem // the restored HSM's keys, not deleted
}

// run runs the drill and returns its report; d.failed names the first
// failed step.
func (d *drill) run(ctx context.Context) drillReport {
	start := time.Now()
	d.rep = drillReport{Folder: d.fl.folder, ScratchInstance: d.fl.scratch, Steps: []drillStep{}, Counts: map[string]drillPair{}}
	func() {
		defer d.cleanup(ctx)
		d.step(ctx, stepManifest, true, d.readManifest)
		d.step(ctx, stepCreate, true, d.createScratch)
		d.step(ctx, stepInitRecovery, true, d.initRecovery)
		d.step(ctx, stepRestoreBlob, true, d.buildBlob)
		d.step(ctx, stepUpload, true, d.uploadSD)
		d.step(ctx, stepActivate, true, d.waitActive)
		d.step(ctx, stepRollback, true, d.rollbackBackup)
		d.step(ctx, stepRestore, true, d.restore)
		d.step(ctx, stepVerifyPolicy, false, d.verifyPolicy)
		d.step(ctx, stepVerifyKeys, false, d.verifyKeys)
		d.step(ctx, stepVerifyCrypto, false, d.verifyCrypto)
	}()
	if isTerminal(d.a.env.Stderr) {
		fmt.Fprint(d.a.env.Stderr, "\r\033[K")
	}
	d.rep.Result = drillPass
	if d.failed != nil {
		d.rep.Result = drillFail
	}
	d.rep.DurationMs = time.Since(start).Milliseconds()
	return d.rep
}

// step runs f as the step name, unless an earlier step it depends on
// failed; a failure of a halting step skips the steps after it (cleanup
// excepted). f returns the step's detail.
func (d *drill) step(ctx context.Context, name string, halting bool, f func(ctx context.Context) (string, error)) {
	switch {
	case d.halted:
		d.record(drillStep{Name: name, Status: drillSkipped, Detail: "not run: an earlier step failed"})
		return
	case ctx.Err() != nil:
		d.record(drillStep{Name: name, Status: drillFail, Detail: "interrupted"})
		d.halted = true
		return
	}
	d.progress(name)
	start := time.Now()
	detail, err := f(ctx)
	st := drillStep{Name: name, Status: drillPass, DurationMs: time.Since(start).Milliseconds(), Detail: detail}
	if err != nil {
		st.Status, st.Detail = drillFail, drillErrorText(err)
		if halting {
			d.halted = true
		}
	}
	d.record(st)
}

// record appends a step to the report; the first failed one is d.failed.
func (d *drill) record(st drillStep) {
	d.rep.Steps = append(d.rep.Steps, st)
	if st.Status == drillFail && d.failed == nil {
		d.failed = &drillStep{Name: st.Name, Detail: st.Detail}
	}
}

// progress names the running step on a terminal.
func (d *drill) progress(name string) {
	if isTerminal(d.a.env.Stderr) {
		fmt.Fprintf(d.a.env.Stderr, "\r\033[KRestore drill of %s: %s …", d.fl.folder, name)
	}
}

// drillErrorText is a step's failure as one line: a server's error as
// "Code: message", as the CLI prints it.
func drillErrorText(err error) string {
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		return oneLine(ce.Code + ": " + ce.Message)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return oneLine(err.Error())
}

// readManifest reads the clear header of the folder's manifest from the
// container, on this machine; the restore authenticates it later.
func (d *drill) readManifest(ctx context.Context) (string, error) {
	containerURI, path, err := container.Resolve(d.fl.storage.containerURI(), d.fl.folder)
	if err != nil {
		return "", err
	}
	if !backupFolderName.MatchString(lastSegment(path)) {
		return "", fmt.Errorf("%q is not a backup folder name (mhsm-{name}-{yyyyMMddHHmmssff})", d.fl.folder)
	}
	d.contURI = containerURI
	if d.store, err = container.Open(ctx, containerURI, d.fl.storage.token); err != nil {
		return "", err
	}
	if i := strings.LastIndex(path, "/"); i >= 0 {
		d.prefix = path[:i+1]
	}
	data, err := d.store.Get(ctx, path+"/"+backupManifestName, maxManifestSize)
	if errors.Is(err, blob.ErrNotFound) {
		objs, lerr := d.store.List(ctx, path+"/")
		if lerr != nil {
			return "", lerr
		}
		if len(objs) == 0 {
			return "", fmt.Errorf("the folder %s does not exist in the container", d.fl.folder)
		}
		return "", fmt.Errorf("the folder %s has no manifest: the backup did not complete (%s, no %s)", d.fl.folder, count(len(objs), "object"), backupManifestName)
	}
	if err != nil {
		return "", blobHint(err)
	}
	var h manifestHeader
	if err := json.Unmarshal(data, &h); err != nil || h.Format != backupFormat {
		return "", fmt.Errorf("the manifest of %s is not a %s manifest", d.fl.folder, backupFormat)
	}
	if h.Folder != lastSegment(path) {
		return "", fmt.Errorf("the manifest of %s names another folder, %q", d.fl.folder, h.Folder)
	}
	d.header = h
	for name, n := range map[string]int{"keys": h.Keys, "deletedKeys": h.DeletedKeys, "versions": h.Versions,
		"roleAssignments": h.RoleAssignments, "roleDefinitions": h.RoleDefinitions} {
		d.rep.Counts[name] = drillPair{Expected: n}
	}
	return fmt.Sprintf("backup of %s made %s: %s, %s, %s, %s, %s (clear header, authenticated by the restore)",
		h.SourceHSM, h.Created.UTC().Format(time.RFC3339), count(h.Keys, "key"), count(h.DeletedKeys, "deleted key"),
		count(h.Versions, "version"), count(h.RoleAssignments, "role assignment"), count(h.RoleDefinitions, "custom role")), nil
}

// count says n things in words: "1 key", "2 keys".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// createScratch creates the scratch HSM with the signed-in principal as
// its administrator.
func (d *drill) createScratch(ctx context.Context) (string, error) {
	acct, err := d.c.Account(ctx)
	if err != nil {
		return "", err
	}
	d.oid = acct.ObjectID
	d.location = d.fl.location
	if d.location == "" {
		r, err := d.c.Region(ctx)
		if err != nil {
			return "", err
		}
		d.location = r.Region
	}
	soft, purgeProtection, retention := true, false, drillRetentionDays
	body := wire.ManagedHSM{
		Location: d.location,
		SKU:      &wire.SKU{Family: "B", Name: "Standard_B1"},
		Tags:     map[string]string{"tresor-drill": d.fl.folder},
		Properties: wire.ManagedHSMProps{
			InitialAdminObjectIDs:     []string{d.oid},
			EnableSoftDelete:          &soft,
			SoftDeleteRetentionInDays: &retention,
			EnablePurgeProtection:     &purgeProtection,
			CreateMode:                "default",
		},
	}
	_, err = d.c.CreateHSM(ctx, d.fl.resourceGroup, d.fl.scratch, body)
	var ce *client.Error
	// A refusal leaves nothing behind (and a name in use is someone
	// else's HSM); any other failure may have created it.
	d.created = err == nil || !errors.As(err, &ce)
	if err != nil {
		return "", err
	}
	if d.hsmURL, err = d.c.HSMURL(ctx, d.fl.scratch); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s in resource group %s, location %s, administrator %s, retention %d days",
		d.fl.scratch, d.fl.resourceGroup, d.location, d.oid, drillRetentionDays), nil
}

func (d *drill) initRecovery(ctx context.Context) (string, error) {
	der, err := d.c.SecurityDomainTransferKey(ctx, d.hsmURL)
	if err != nil {
		return "", err
	}
	if _, err := securitydomain.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("the scratch HSM's exchange certificate is not usable: %s", trimSD(err))
	}
	d.exchange = securitydomain.CertificatePEM(der)
	return "the scratch HSM is in recovery mode; exchange certificate received", nil
}

// buildBlob builds the upload blob here, as restore-blob does: the
// custodians' private keys never leave this machine.
func (d *drill) buildBlob(context.Context) (string, error) {
	in := d.fl.sd
	in.exchangeCert = "(the scratch HSM's exchange certificate)"
	in.exchangePEM = d.exchange
	b, err := buildRestoreBlob(in)
	if err != nil {
		return "", err
	}
	d.upload = b
	return fmt.Sprintf("security domain %s opened with %s, re-encrypted to the exchange certificate", in.sdFile, count(len(in.wrappingKeys), "custodian key")), nil
}

func (d *drill) uploadSD(ctx context.Context) (string, error) {
	first, op, err := d.c.BeginUploadSecurityDomain(ctx, d.hsmURL, d.upload)
	clear(d.upload)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(first.Status, client.SecurityDomainFailed) {
		return "", &client.Error{Status: http.StatusAccepted, Code: "SecurityDomainUploadFailed", Message: first.StatusDetails}
	}
	wctx, cancel := context.WithTimeout(ctx, sdWaitTimeout)
	defer cancel()
	st, err := op.Wait(wctx, nil)
	if err != nil {
		return "", err
	}
	return oneLine(st.Status + ": " + st.StatusDetails), nil
}

// waitActive waits until the control plane shows the scratch HSM Active.
func (d *drill) waitActive(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sdWaitTimeout)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		h, err := d.c.GetHSM(ctx, d.fl.resourceGroup, d.fl.scratch)
		if err != nil {
			return "", err
		}
		var status string
		if p := h.Properties.SecurityDomainProperties; p != nil {
			status = p.ActivationStatus
		}
		switch status {
		case "Active":
			return "activationStatus Active", nil
		case "Failed":
			return "", fmt.Errorf("activationStatus Failed: %s", h.Properties.StatusMessage)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("the scratch HSM is still %s: %w", status, ctx.Err())
		case <-t.C:
		}
	}
}

// rollbackBackup takes the full backup of the scratch HSM that a full
// restore requires, into the same container.
func (d *drill) rollbackBackup(ctx context.Context) (string, error) {
	op, err := d.c.BeginBackup(ctx, d.hsmURL, d.fl.storage.sasParameter())
	if err != nil {
		return "", err
	}
	err = op.Wait(ctx, nil)
	if u := op.Status().AzureStorageBlobContainerURI; u != nil {
		d.rollback = lastSegment(strings.TrimRight(*u, "/"))
	}
	if err != nil {
		return "", err
	}
	return "folder " + d.rollback, nil
}

func (d *drill) restore(ctx context.Context) (string, error) {
	op, err := d.c.BeginRestore(ctx, d.hsmURL, wire.RestoreOperationParameters{
		SASTokenParameters: d.fl.storage.sasParameter(), FolderToRestore: d.fl.folder})
	if err != nil {
		return "", err
	}
	err = op.Wait(ctx, nil)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusForbidden && !op.Done() {
		// The drill held restore/status/action in the scratch HSM when the
		// job began; a full restore changes the role assignments only in
		// the command that also records it Succeeded, so losing the right
		// means the restore went through.
		return "Succeeded (the restored role assignments no longer let the drill read the job's status)", nil
	}
	if err != nil {
		return "", err
	}
	st := op.Status()
	detail := st.Status
	if st.StatusDetails != nil && *st.StatusDetails != "" {
		detail += ": " + *st.StatusDetails
	}
	return oneLine(detail), nil
}

// forbidden reports whether err is the server's 403.
func forbidden(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == http.StatusForbidden
}

// withRole runs call; if the server refuses it (403) and the drill has not
// yet assigned itself role, it does so at "/" and runs call again. action
// names what call needs, for the message when the drill cannot get it.
func (d *drill) withRole(ctx context.Context, role drillRole, action string, call func() error) error {
	err := call()
	if !forbidden(err) || d.granted[role.guid] {
		if forbidden(err) {
			return fmt.Errorf("the drill principal %s may not %s in the restored HSM even with %s: %s", d.oid, action, role.name, drillErrorText(err))
		}
		return err
	}
	_, gerr := d.c.CreateRoleAssignment(ctx, d.hsmURL, "/", newRBACGUID(), client.RoleDefinitionIDPrefix+role.guid, d.oid)
	if forbidden(gerr) {
		return fmt.Errorf("the role assignments restored from the backup do not let the drill principal %s %s, nor assign itself %s (roleAssignments/write/action): "+
			"assign the principal %s (or a role that may assign roles, such as Managed HSM Administrator) at / in the source HSM and back it up again",
			d.oid, action, role.name, role.name)
	}
	if gerr != nil {
		return fmt.Errorf("assigning %s to the drill principal: %s", role.name, drillErrorText(gerr))
	}
	d.granted[role.guid] = true
	d.grants = append(d.grants, role.name)
	return call()
}

// verifyPolicy checks the role assignments and custom role definitions
// against the manifest. After a full restore they are the backup's alone:
// the scratch HSM's own administrator assignment is gone, and the drill
// assigns itself roles only after this count.
func (d *drill) verifyPolicy(ctx context.Context) (string, error) {
	as, err := d.c.ListRoleAssignments(ctx, d.hsmURL, "/", "")
	if forbidden(err) {
		return "", fmt.Errorf("the role assignments restored from the backup give the drill principal %s no right to list them (roleAssignments/read/action): "+
			"assign it a role such as Managed HSM Crypto User or Administrator at / in the source HSM and back it up again", d.oid)
	}
	if err != nil {
		return "", err
	}
	defs, err := d.c.ListRoleDefinitions(ctx, d.hsmURL, "/", "")
	if forbidden(err) {
		return "", fmt.Errorf("the role assignments restored from the backup give the drill principal %s no right to list role definitions (roleDefinitions/read/action)", d.oid)
	}
	if err != nil {
		return "", err
	}
	custom := 0
	for _, r := range defs {
		if r.Properties.RoleType == "CustomRole" {
			custom++
		}
	}
	ok := d.found("roleAssignments", len(as))
	ok = d.found("roleDefinitions", custom) && ok
	if !ok {
		return "", d.mismatch("roleAssignments", "roleDefinitions")
	}
	return fmt.Sprintf("%s, %s, as the manifest counts", count(len(as), "role assignment"), count(custom, "custom role definition")), nil
}

// found records a count found in the restored HSM and reports whether it
// is the manifest's.
func (d *drill) found(name string, n int) bool {
	p := d.rep.Counts[name]
	p.Found = &n
	d.rep.Counts[name] = p
	return p.Expected == n
}

// mismatch describes the counts that differ from the manifest's.
func (d *drill) mismatch(names ...string) error {
	var diffs []string
	for _, name := range names {
		p := d.rep.Counts[name]
		if p.Found != nil && *p.Found != p.Expected {
			diffs = append(diffs, fmt.Sprintf("%s: found %d, the manifest counts %d", name, *p.Found, p.Expected))
		}
	}
	return errors.New(strings.Join(diffs, "; "))
}

// verifyKeys checks the numbers of keys, deleted keys and versions. The
// versions of a deleted key cannot be listed: the drill recovers the
// deleted keys in the scratch HSM first.
func (d *drill) verifyKeys(ctx context.Context) (string, error) {
	var active []wire.KeyItem
	if err := d.withRole(ctx, drillCryptoUser, "list keys (keys/read/action)", func() (err error) {
		active, err = d.c.ListKeys(ctx, d.hsmURL, 0)
		return err
	}); err != nil {
		return "", err
	}
	var deleted []wire.DeletedKeyItem
	if err := d.withRole(ctx, drillCryptoOfficer, "list deleted keys (keys/deletedKeys/read/action)", func() (err error) {
		deleted, err = d.c.ListDeletedKeys(ctx, d.hsmURL, 0)
		return err
	}); err != nil {
		return "", err
	}
	d.active = active
	names := make([]string, 0, len(active)+len(deleted))
	for _, k := range active {
		names = append(names, kidName(k.Kid))
	}
	for _, k := range deleted {
		name := kidName(k.Kid)
		if err := d.withRole(ctx, drillCryptoOfficer, "recover deleted keys (keys/deletedKeys/recover/action)", func() error {
			_, err := d.c.RecoverDeletedKey(ctx, d.hsmURL, name)
			return err
		}); err != nil {
			return "", fmt.Errorf("recovering the deleted key %s to count its versions: %w", name, err)
		}
		names = append(names, name)
	}
	versions := 0
	for _, name := range names {
		var vs []wire.KeyItem
		if err := d.withRole(ctx, drillCryptoUser, "list key versions (keys/read/action)", func() (err error) {
			vs, err = d.c.ListKeyVersions(ctx, d.hsmURL, name, 0)
			return err
		}); err != nil {
			return "", fmt.Errorf("listing the versions of %s: %w", name, err)
		}
		versions += len(vs)
	}
	ok := d.found("keys", len(active)+len(deleted))
	ok = d.found("deletedKeys", len(deleted)) && ok
	ok = d.found("versions", versions) && ok
	if !ok {
		return "", d.mismatch("keys", "deletedKeys", "versions")
	}
	detail := fmt.Sprintf("%s (%s), %s, as the manifest counts", count(len(active)+len(deleted), "key"),
		count(len(deleted), "deleted key"), count(versions, "version"))
	if len(deleted) > 0 {
		detail += "; deleted keys recovered in the scratch HSM to count their versions"
	}
	if len(d.grants) > 0 {
		detail += "; the drill assigned itself " + strings.Join(d.grants, " and ") + " at / (after counting role assignments)"
	}
	return detail, nil
}

// kidName returns the key name of a key id, "" if it names none.
func kidName(kid string) string {
	if n := keyNameOf(kid); n != nil {
		return *n
	}
	return ""
}

// verifyCrypto uses one enabled, unexpired key of each key type that the
// restored HSM holds: sign and verify (RSA, EC), wrap and unwrap or
// encrypt and decrypt (AES, or RSA without sign).
func (d *drill) verifyCrypto(ctx context.Context) (string, error) {
	if d.active == nil {
		return "", errors.New("not run: the keys could not be listed")
	}
	keys := slices.Clone(d.active)
	slices.SortFunc(keys, func(x, y wire.KeyItem) int { return cmp.Compare(kidName(x.Kid), kidName(y.Kid)) })
	now := time.Now().Unix()
	done := map[string]string{} // kty → what was tested
	unusable := map[string]bool{}
	var order []string
	for _, k := range keys {
		at := k.Attributes
		if at.Enabled != nil && !*at.Enabled || at.NotBefore != nil && *at.NotBefore > now || at.Expires != nil && *at.Expires <= now {
			continue
		}
		if len(done) == 3 {
			break
		}
		name := kidName(k.Kid)
		var b *wire.KeyBundle
		if err := d.withRole(ctx, drillCryptoUser, "read keys (keys/read/action)", func() (err error) {
			b, err = d.c.GetKey(ctx, d.hsmURL, name, "")
			return err
		}); err != nil {
			return "", fmt.Errorf("reading %s: %w", name, err)
		}
		kty := strings.TrimSuffix(b.Key.Kty, "-HSM")
		if _, ok := done[kty]; ok {
			continue
		}
		what, err := d.useKey(ctx, name, b)
		if err != nil {
			return "", fmt.Errorf("%s key %s: %w", kty, name, err)
		}
		if what == "" {
			unusable[kty] = true
			continue
		}
		done[kty] = what
		order = append(order, kty)
	}
	if len(done) == 0 {
		if len(unusable) > 0 {
			return "no enabled key allows an operation the drill can test", nil
		}
		return "no enabled, unexpired keys to use", nil
	}
	slices.Sort(order)
	parts := make([]string, 0, len(order))
	for _, kty := range order {
		parts = append(parts, kty+": "+done[kty])
	}
	return strings.Join(parts, "; "), nil
}

// drillText is what the drill signs a digest of.
const drillText = "tresor restore drill"

// useKey tests the key and says what it did, or "" if its key_ops allow
// nothing the drill tests.
func (d *drill) useKey(ctx context.Context, name string, b *wire.KeyBundle) (string, error) {
	ops := b.Key.KeyOps
	has := func(a, b string) bool { return slices.Contains(ops, a) && slices.Contains(ops, b) }
	switch strings.TrimSuffix(b.Key.Kty, "-HSM") {
	case "RSA":
		switch {
		case has("sign", "verify"):
			return d.signVerify(ctx, name, "PS256", drillDigest(32))
		case has("encrypt", "decrypt"):
			return d.roundTrip(ctx, name, []string{"RSA-OAEP-256"}, d.c.Encrypt, d.c.Decrypt, "encrypt/decrypt")
		case has("wrapKey", "unwrapKey"):
			return d.roundTrip(ctx, name, []string{"RSA-OAEP-256"}, d.c.WrapKey, d.c.UnwrapKey, "wrap/unwrap")
		}
	case "EC":
		if !has("sign", "verify") {
			return "", nil
		}
		alg, size := map[string]string{"P-256": "ES256", "P-256K": "ES256K", "P-384": "ES384", "P-521": "ES512"}[b.Key.Crv],
			map[string]int{"P-256": 32, "P-256K": 32, "P-384": 48, "P-521": 64}[b.Key.Crv]
		if alg == "" {
			return "", fmt.Errorf("unknown curve %q", b.Key.Crv)
		}
		return d.signVerify(ctx, name, alg, drillDigest(size))
	case "oct":
		switch {
		case has("wrapKey", "unwrapKey"):
			return d.roundTrip(ctx, name, []string{"A256KW", "A192KW", "A128KW"}, d.c.WrapKey, d.c.UnwrapKey, "wrap/unwrap")
		case has("encrypt", "decrypt"):
			return d.roundTrip(ctx, name, []string{"A256GCM", "A192GCM", "A128GCM"}, d.c.Encrypt, d.c.Decrypt, "encrypt/decrypt")
		}
	default:
		return "", fmt.Errorf("unknown key type %q", b.Key.Kty)
	}
	return "", nil
}

// drillDigest returns the SHA-256, -384 or -512 digest of drillText for a
// size of 32, 48 or 64 bytes.
func drillDigest(size int) []byte {
	switch size {
	case 48:
		s := sha512.Sum384([]byte(drillText))
		return s[:]
	case 64:
		s := sha512.Sum512([]byte(drillText))
		return s[:]
	}
	s := sha256.Sum256([]byte(drillText))
	return s[:]
}

func (d *drill) signVerify(ctx context.Context, name, alg string, digest []byte) (string, error) {
	var sig *client.KeyOperationResult
	if err := d.withRole(ctx, drillCryptoUser, "sign (keys/sign/action)", func() (err error) {
		sig, err = d.c.Sign(ctx, d.hsmURL, name, "", alg, digest)
		return err
	}); err != nil {
		return "", err
	}
	var ok bool
	if err := d.withRole(ctx, drillCryptoUser, "verify (keys/verify/action)", func() (err error) {
		ok, err = d.c.Verify(ctx, d.hsmURL, name, "", alg, digest, sig.Value)
		return err
	}); err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("the HSM does not verify its own %s signature", alg)
	}
	return fmt.Sprintf("%s sign/verify with %s", alg, name), nil
}

type keyOpFunc func(ctx context.Context, hsmURL, name, version string, op client.KeyOperation) (*client.KeyOperationResult, error)

// roundTrip encrypts (or wraps) 32 random bytes with the first of algs
// that the key takes and checks that decrypting gives them back.
func (d *drill) roundTrip(ctx context.Context, name string, algs []string, there, back keyOpFunc, what string) (string, error) {
	plain := make([]byte, 32)
	_, _ = rand.Read(plain)
	var lastErr error
	for _, alg := range algs {
		var out *client.KeyOperationResult
		err := d.withRole(ctx, drillCryptoUser, what+" ("+alg+")", func() (err error) {
			out, err = there(ctx, d.hsmURL, name, "", client.KeyOperation{Algorithm: alg, Value: plain})
			return err
		})
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status == http.StatusBadRequest {
			lastErr = err // another key size: try the next algorithm
			continue
		}
		if err != nil {
			return "", err
		}
		var res *client.KeyOperationResult
		if err := d.withRole(ctx, drillCryptoUser, what+" ("+alg+")", func() (err error) {
			res, err = back(ctx, d.hsmURL, name, "", client.KeyOperation{Algorithm: alg, Value: out.Value, IV: out.IV, Tag: out.Tag, AAD: out.AAD})
			return err
		}); err != nil {
			return "", err
		}
		if string(res.Value) != string(plain) {
			return "", fmt.Errorf("%s with %s does not give back what it was given", what, alg)
		}
		return fmt.Sprintf("%s %s with %s", alg, what, name), nil
	}
	return "", lastErr
}

// cleanup deletes and purges the scratch HSM and deletes the rollback
// backup, on a context of its own: also when the drill was interrupted.
func (d *drill) cleanup(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), drillCleanupTimeout)
	defer cancel()
	if d.fl.keepOnFailure && d.failed != nil {
		why := fmt.Sprintf("kept (--keep-on-failure): run 'tresor delete --hsm-name %s' and 'tresor purge --hsm-name %s'", d.fl.scratch, d.fl.scratch)
		d.record(drillStep{Name: stepDelete, Status: drillSkipped, Detail: why})
		d.record(drillStep{Name: stepPurge, Status: drillSkipped, Detail: why})
		d.record(drillStep{Name: stepDeleteBackups, Status: drillSkipped, Detail: "kept (--keep-on-failure)"})
		return
	}
	if !d.created {
		d.record(drillStep{Name: stepDelete, Status: drillSkipped, Detail: "no scratch HSM was created"})
		d.record(drillStep{Name: stepPurge, Status: drillSkipped, Detail: "no scratch HSM was created"})
	} else {
		d.cleanupStep(ctx, stepDelete, func() (string, error) {
			err := d.c.DeleteHSM(ctx, d.fl.resourceGroup, d.fl.scratch)
			var ce *client.Error
			if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
				return "not found: nothing to delete", nil
			}
			return "soft-deleted " + d.fl.scratch, err
		})
		d.cleanupStep(ctx, stepPurge, func() (string, error) {
			err := d.c.PurgeHSM(ctx, d.location, d.fl.scratch)
			var ce *client.Error
			if errors.As(err, &ce) && ce.Status == http.StatusNotFound && d.rep.Steps[len(d.rep.Steps)-1].Detail == "not found: nothing to delete" {
				return "not found: nothing to purge", nil
			}
			return "purged " + d.fl.scratch, err
		})
	}
	if d.rollback == "" {
		d.record(drillStep{Name: stepDeleteBackups, Status: drillSkipped, Detail: "no rollback backup was taken"})
		return
	}
	start := time.Now()
	n, err := d.deleteRollback(ctx)
	st := drillStep{Name: stepDeleteBackups, Status: drillPass, DurationMs: time.Since(start).Milliseconds(),
		Detail: fmt.Sprintf("deleted %s (%s)", d.rollback, count(n, "object"))}
	if err != nil {
		st.Status = drillWarning
		st.Detail = fmt.Sprintf("the rollback backup %s is left in the container: %s", d.rollback, drillErrorText(err))
		if errors.Is(err, blob.ErrPermission) {
			st.Detail += " (the SAS token needs delete permission to remove it)"
		}
	}
	d.record(st)
}

// cleanupStep runs a cleanup step: it fails the drill when it fails.
func (d *drill) cleanupStep(ctx context.Context, name string, f func() (string, error)) {
	d.progress(name)
	start := time.Now()
	detail, err := f()
	st := drillStep{Name: name, Status: drillPass, DurationMs: time.Since(start).Milliseconds(), Detail: detail}
	if err != nil {
		st.Status, st.Detail = drillFail, drillErrorText(err)+fmt.Sprintf(" (the scratch HSM %s may be left: delete and purge it yourself)", d.fl.scratch)
	}
	d.record(st)
}

// deleteRollback deletes the objects of the rollback backup's folder and
// returns how many it deleted.
func (d *drill) deleteRollback(ctx context.Context) (int, error) {
	if d.store == nil {
		return 0, errors.New("the container is not open")
	}
	path := d.prefix + d.rollback + "/"
	objs, err := d.store.List(ctx, path)
	if err != nil {
		return 0, err
	}
	// The manifest first: a folder without one is an incomplete backup,
	// never mistaken for a good one if the rest cannot be deleted.
	slices.SortStableFunc(objs, func(x, y blob.Object) int {
		return cmp.Compare(btoi(!strings.HasSuffix(x.Name, "/"+backupManifestName)), btoi(!strings.HasSuffix(y.Name, "/"+backupManifestName)))
	})
	for i, o := range objs {
		if err := d.store.Delete(ctx, o.Name); err != nil {
			return i, err
		}
	}
	// A directory container keeps the folder's directory: remove it if
	// it is empty now (the CLI reads file:// containers on this machine).
	if u, err := url.Parse(d.contURI); err == nil && u.Scheme == "file" {
		_ = os.Remove(filepath.Join(filepath.FromSlash(u.Path), filepath.FromSlash(strings.TrimSuffix(path, "/"))))
	}
	return len(objs), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// drillTable is the -o table view of a drill report: one row per step and
// a last one with the result.
func drillTable(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	steps, _ := m["steps"].([]any)
	rows := make([]row, 0, len(steps)+1)
	dur := func(ms any) any {
		n, ok := ms.(json.Number)
		if !ok {
			return ms
		}
		i, err := n.Int64()
		if err != nil {
			return ms
		}
		return (time.Duration(i) * time.Millisecond).String()
	}
	summary := fmt.Sprintf("%v restored into %v and checked", m["folder"], m["scratchInstance"])
	failed := false
	for _, s := range steps {
		sm, _ := s.(map[string]any)
		rows = append(rows, row{{"Step", sm["name"]}, {"Status", sm["status"]}, {"Duration", dur(sm["durationMs"])}, {"Detail", sm["detail"]}})
		if sm["status"] == drillFail && !failed {
			failed = true
			summary = fmt.Sprintf("%v: the drill failed at %v", m["folder"], sm["name"])
		}
	}
	rows = append(rows, row{{"Step", "result"}, {"Status", m["result"]}, {"Duration", dur(m["durationMs"])}, {"Detail", summary}})
	return rows
}
