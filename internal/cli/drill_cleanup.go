package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"tresor/internal/blob"
	"tresor/internal/client"
)

// The cleanup of a restore drill and its report table.

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
