package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// backupsData is the backups page's.
type backupsData struct {
	Name       string
	Jobs       []jobRow
	Drills     []jobRow
	Folders    []string // folders of the succeeded backups, newest first
	Policy     *wire.BackupPolicy
	PolicyErr  *flash
	Container  string // the last container used, to prefill the forms
	InProgress bool
}

// jobRow is a job with the status the API answered (or why it did not).
type jobRow struct {
	jobRef
	Status *client.JobStatus
	Error  *flash
}

// Passed says whether a drill passed.
func (j jobRow) Passed() bool { return j.Status != nil && j.Status.Status == wire.JobSucceeded }

func (c *Console) backupsPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("hsm")
	d := backupsData{Name: name}
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err != nil {
		f := errorFlash(err)
		d.PolicyErr = &f
		c.render(w, r, s, statusOf(err), "backups", view{Title: "Backups of " + name, Nav: "backups", HSM: name, Data: d})
		return
	}
	for _, j := range c.records.list(name) {
		row := jobRow{jobRef: j}
		if st, err := c.jobStatus(cx, cl, hsmURL, j); err != nil {
			f := errorFlash(err)
			row.Error = &f
		} else {
			row.Status = &st
			if st.Status == wire.JobInProgress {
				d.InProgress = true
			}
			if j.Kind == kindBackup && st.Status == wire.JobSucceeded && st.AzureStorageBlobContainerURI != nil {
				u := *st.AzureStorageBlobContainerURI
				d.Folders = append(d.Folders, u[strings.LastIndex(u, "/")+1:])
			}
		}
		if d.Container == "" {
			d.Container = j.Container
		}
		if j.Kind == kindDrill {
			d.Drills = append(d.Drills, row)
		} else {
			d.Jobs = append(d.Jobs, row)
		}
	}
	if p, err := cl.GetBackupPolicy(cx, hsmURL); err == nil {
		d.Policy = &p
		if d.Container == "" {
			d.Container = p.StorageResourceURI
		}
	} else {
		f := errorFlash(err)
		d.PolicyErr = &f
	}
	c.render(w, r, s, http.StatusOK, "backups", view{Title: "Backups of " + name, Nav: "backups", HSM: name, Data: d})
}

// backupAction starts a backup, a restore of a folder or of one key, a
// drill (the API's pre-restore check of a folder), or sets or deletes the
// backup policy.
func (c *Console) backupAction(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	back := hsmPath(name, "backups")
	f := r.PostForm
	sas := wire.SASTokenParameter{StorageResourceURI: strings.TrimSpace(f.Get("storage")), Token: strings.TrimSpace(f.Get("token"))}
	folder := strings.TrimSpace(f.Get("folder"))
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	ref := jobRef{Started: c.cfg.Now(), Container: sas.StorageResourceURI, Folder: folder, By: s.account.ObjectID}
	var op *client.JobOperation
	msg := ""
	switch r.PathValue("action") {
	case "start":
		ref.Kind = kindBackup
		op, err = cl.BeginBackup(cx, hsmURL, sas)
		msg = "Started a backup of " + name + "."
	case "restore":
		ref.Kind = kindRestore
		op, err = cl.BeginRestore(cx, hsmURL, wire.RestoreOperationParameters{SASTokenParameters: sas, FolderToRestore: folder})
		msg = "Started a full restore of " + name + " from " + folder + "."
	case "restorekey":
		ref.Kind, ref.Key = kindKeyRestore, strings.TrimSpace(f.Get("key"))
		op, err = cl.BeginSelectiveKeyRestore(cx, hsmURL, ref.Key, wire.SelectiveKeyRestoreParameters{SASTokenParameters: sas, Folder: folder})
		msg = "Started restoring the key " + ref.Key + " from " + folder + "."
	case "drill":
		ref.Kind = kindDrill
		op, err = cl.PreRestore(cx, hsmURL, wire.RestoreOperationParameters{SASTokenParameters: sas, FolderToRestore: folder})
		msg = "Started a drill of " + folder + "."
	case "policy":
		var keep int
		if keep, err = strconv.Atoi(strings.TrimSpace(f.Get("keep"))); err != nil {
			err = errors.New("keep: not a number")
			break
		}
		enabled := f.Get("enabled") == "on"
		if _, err = cl.SetBackupPolicy(cx, hsmURL, wire.BackupPolicyParameters{StorageResourceURI: sas.StorageResourceURI, Token: sas.Token,
			Every: strings.TrimSpace(f.Get("every")), Keep: keep, Enabled: &enabled}); err == nil {
			s.addFlash(flash{Message: "Set the backup policy of " + name + "."})
		}
	case "deletepolicy":
		if err = cl.DeleteBackupPolicy(cx, hsmURL); err == nil {
			s.addFlash(flash{Message: "Deleted the backup policy of " + name + "."})
		}
	default:
		err = errors.New("unknown backup action")
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	if op != nil {
		ref.ID = op.Status().JobID
		if ref.ID != "" {
			c.records.add(name, ref)
		}
		s.addFlash(flash{Message: msg})
	}
	return back
}
