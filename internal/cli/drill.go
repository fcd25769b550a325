package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/blob"
	"tresor/internal/client"
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
