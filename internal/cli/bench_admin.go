package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"tresor/internal/bench"
	"tresor/internal/client"
	"tresor/internal/wire"
)

// benchAdmin is what tresor bench --admin measures.
type benchAdmin struct {
	// CreateKeyPerSec is the create-key rate of each key type at
	// concurrency Concurrency (new versions of one key, as create does).
	CreateKeyPerSec map[string]float64 `json:"createKeyPerSec"`
	Concurrency     int                `json:"concurrency"`
	// Keys is how many keys the HSM held for the backup and restore
	// (P-256 keys, created at FillKeyPerSec).
	Keys          int     `json:"keys"`
	FillKeyPerSec float64 `json:"fillKeyPerSec"`
	// SecurityDomainDownloadSeconds is the download that activates a new
	// HSM (3 certificates, quorum 2), until the operation reports success.
	SecurityDomainDownloadSeconds float64 `json:"securityDomainDownloadSeconds"`
	BackupSeconds                 float64 `json:"backupSeconds"`
	RestoreSeconds                float64 `json:"restoreSeconds"`
	// ServerMemoryPer10000KeysBytes is the growth of the region's Go heap
	// in use (right after a collection) while the keys were created,
	// scaled to 10,000 keys. The resident size before and after is given
	// too; it moves with the collector's timing and the bbolt file's
	// mapped pages, so it is no measure of its own.
	ServerMemoryPer10000KeysBytes int64 `json:"serverMemoryPer10000KeysBytes"`
	ServerHeapBeforeBytes         int64 `json:"serverHeapBeforeBytes"`
	ServerHeapAfterBytes          int64 `json:"serverHeapAfterBytes"`
	ServerRSSBeforeBytes          int64 `json:"serverRssBeforeBytes"`
	ServerRSSAfterBytes           int64 `json:"serverRssAfterBytes"`
}

// runAdmin measures the admin path on the dev region.
func (r *benchRun) runAdmin(ctx context.Context) error {
	conc := r.plan.conc[len(r.plan.conc)-1]
	if len(r.plan.conc) > 1 {
		conc = 16
	}
	res := benchAdmin{CreateKeyPerSec: map[string]float64{}, Concurrency: conc, Keys: r.fl.adminKeys,
		SecurityDomainDownloadSeconds: r.sdTime.Seconds()}
	r.steps = len(r.plan.specs) + 3
	for _, s := range r.plan.specs {
		k, err := bench.NewKey(s)
		if err != nil {
			return err
		}
		w, err := k.Workload(bench.OpCreate, benchKeyName(s))
		if err != nil {
			return err
		}
		tr, err := r.run(ctx, "tresor", w, r.tresor, conc)
		if err != nil {
			return err
		}
		if tr.Errors > 0 {
			r.note("create %s: %d errors, the first: %v", s.Name, tr.Errors, tr.FirstError)
		}
		res.CreateKeyPerSec[s.Name] = bench.NewRow(s.Name, bench.OpCreate, conc, tr, 0, 0).OpsPerSec
	}
	heapBefore, err := r.region.heapAfterGC(ctx)
	if err != nil {
		return err
	}
	before, err := r.region.rssBytes()
	if err != nil {
		return err
	}
	r.step++
	t0 := time.Now()
	if err := r.fill(ctx, res.Keys, conc); err != nil {
		return err
	}
	res.FillKeyPerSec = float64(res.Keys) / time.Since(t0).Seconds()
	after, err := r.region.rssBytes()
	if err != nil {
		return err
	}
	heapAfter, err := r.region.heapAfterGC(ctx)
	if err != nil {
		return err
	}
	res.ServerRSSBeforeBytes, res.ServerRSSAfterBytes = before, after
	res.ServerHeapBeforeBytes, res.ServerHeapAfterBytes = heapBefore, heapAfter
	res.ServerMemoryPer10000KeysBytes = (heapAfter - heapBefore) * 10000 / int64(res.Keys)

	container := wire.SASTokenParameter{StorageResourceURI: r.region.backups, Token: "x"}
	r.step++
	r.note("[%d/%d] backup of %d keys into %s …", r.step, r.steps, res.Keys, r.region.backups)
	t0 = time.Now()
	op, err := r.c.BeginBackup(ctx, r.hsmURL, container)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := pollJob(ctx, op); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	res.BackupSeconds = time.Since(t0).Seconds()
	folderURI := ""
	if u := op.Status().AzureStorageBlobContainerURI; u != nil {
		folderURI = *u
	}
	folder := folderURI[strings.LastIndex(folderURI, "/")+1:]
	r.step++
	r.note("[%d/%d] restore of %d keys from %s …", r.step, r.steps, res.Keys, folder)
	t0 = time.Now()
	rop, err := r.c.BeginRestore(ctx, r.hsmURL, wire.RestoreOperationParameters{SASTokenParameters: container, FolderToRestore: folder})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := pollJob(ctx, rop); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	res.RestoreSeconds = time.Since(t0).Seconds()
	return r.reportAdmin(res)
}

// pollJob polls op every 10 ms until it ends, ignoring the Retry-After
// that [client.JobOperation.Wait] honours: its second-long waits would be
// most of what is measured.
func pollJob(ctx context.Context, op *client.JobOperation) error {
	for !op.Done() {
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if err := op.Poll(ctx); err != nil {
			return err
		}
	}
	return op.Err()
}

// fill creates n P-256 keys (fill-0 … fill-{n-1}) at concurrency conc.
func (r *benchRun) fill(ctx context.Context, n, conc int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	l := newLoader(r.tresor, conc, r.runID)
	defer l.close()
	body := []byte(`{"kty":"EC-HSM","crv":"P-256"}`)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				w := &bench.Workload{Method: "POST", Path: fmt.Sprintf("/keys/fill-%d/create?api-version=%s", i, bench.KeysAPIVersion), Body: body}
				if err := l.op(w)(ctx, 0); err != nil {
					errs <- err
					return
				}
				if r.tty && i%100 == 0 {
					fmt.Fprintf(r.a.env.Stderr, "\r\033[K[%d/%d] creating %d keys: %d", r.step, r.steps, n, i)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("creating keys: %w", err)
	}
	return ctx.Err()
}

func (r *benchRun) reportAdmin(res benchAdmin) error {
	out := r.a.env.Stdout
	if r.tty {
		fmt.Fprint(r.a.env.Stderr, "\r\033[K")
	}
	if r.fl.json {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, s := range r.plan.specs {
		fmt.Fprintf(tw, "create key %s (c=%d)\t%.1f keys/s\n", s.Name, res.Concurrency, res.CreateKeyPerSec[s.Name])
	}
	fmt.Fprintf(tw, "create %d P-256 keys (c=%d)\t%.1f keys/s\n", res.Keys, res.Concurrency, res.FillKeyPerSec)
	fmt.Fprintf(tw, "security domain download (3 certificates, quorum 2)\t%.3f s\n", res.SecurityDomainDownloadSeconds)
	fmt.Fprintf(tw, "full backup of %d keys into file://\t%.3f s\n", res.Keys, res.BackupSeconds)
	fmt.Fprintf(tw, "full restore of %d keys from file://\t%.3f s\n", res.Keys, res.RestoreSeconds)
	fmt.Fprintf(tw, "server memory per 10,000 keys (Go heap after GC %.1f → %.1f MiB; RSS %.1f → %.1f MiB)\t%.1f MiB\n",
		mib(res.ServerHeapBeforeBytes), mib(res.ServerHeapAfterBytes),
		mib(res.ServerRSSBeforeBytes), mib(res.ServerRSSAfterBytes), mib(res.ServerMemoryPer10000KeysBytes))
	return tw.Flush()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
