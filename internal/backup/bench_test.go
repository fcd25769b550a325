package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"tresor/internal/blob/azuritetest"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/store"
)

// renameRecord returns a key record's JSON with its "name" set to name.
func renameRecord(t testing.TB, rec json.RawMessage, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec, &m); err != nil {
		t.Fatal(err)
	}
	m["name"], _ = json.Marshal(name)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seedKeys fills in with n EC P-256 keys k000000…: one made by the key
// service, the others copies of its exported record and version under new
// names, written straight to the store 1,000 keys per command (making
// 100,000 keys through keys.Service.Create would take minutes).
func seedKeys(t testing.TB, e *env, in instances.Instance, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.keys.Create(ctx, in, "k000000", keys.CreateParams{Kty: "EC", Curve: "P-256", KeyOps: []string{"sign", "verify"}}); err != nil {
		t.Fatal(err)
	}
	exported, err := e.keys.ExportKeys(ctx, in, "", 1)
	if err != nil || len(exported) != 1 || exported[0].ID != "k000000" {
		t.Fatalf("ExportKeys: %+v, %v", exported, err)
	}
	tmpl := exported[0]
	const perCommand = 1000
	var vals []store.Value
	flush := func() {
		if len(vals) == 0 {
			return
		}
		err := e.st.Apply(ctx, store.WriteInstanceValues{Name: in.Key, Root: in.SealedRoot(), Epoch: in.Epoch, Puts: vals})
		if err != nil {
			t.Fatal(err)
		}
		vals = nil
	}
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("k%06d", i)
		x := keys.Exported{ID: id, Record: renameRecord(t, tmpl.Record, id), Versions: tmpl.Versions}
		v, err := e.keys.SealExported(in, &x)
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v...)
		if i%perCommand == 0 {
			flush()
		}
	}
	flush()
	if got, err := e.keys.CountKeys(ctx, in); err != nil || got != n {
		t.Fatalf("seeded %d keys (%v), want %d", got, err, n)
	}
}

// benchDest returns the destination of a benchmark: the env's file
// container, or a new container in Azurite with a SAS token.
func benchDest(b *testing.B, e *env, kind string) Destination {
	b.Helper()
	if kind == "file" {
		return e.dest
	}
	srv := azuritetest.Start(b)
	name := "bench" + strings.ToLower(fmt.Sprintf("%d", time.Now().UnixNano()))
	u := srv.CreateContainer(b, name)
	return Destination{StorageURI: u, Token: srv.SAS(b, name, "crwdl", time.Now().Add(time.Hour))}
}

// benchSizes are the key counts the floors name: 5,000 keys each way
// under 5 s and 100,000 under 30 s on the 2-core reference machine.
var benchSizes = []int{5000, 100_000}

// runBackup runs one backup to d and returns its folder.
func runBackup(b *testing.B, e *env, in instances.Instance, d Destination) string {
	b.Helper()
	j, err := e.svc.StartBackup(context.Background(), in, d)
	if err != nil {
		b.Fatal(err)
	}
	j = e.wait(b, in, j.ID, BackupKinds)
	if j.Status != store.JobSucceeded {
		b.Fatalf("backup: %+v", j)
	}
	return j.Result[strings.LastIndex(j.Result, "/")+1:]
}

func BenchmarkBackup(b *testing.B) {
	for _, kind := range []string{"file", "azurite"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				e := newEnv(b)
				in := e.activeInstance(b, "bench")
				seedKeys(b, e, in, n)
				d := benchDest(b, e, kind)
				for b.Loop() {
					runBackup(b, e, in, d)
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "keys/s")
			})
		}
	}
}

func BenchmarkRestore(b *testing.B) {
	for _, kind := range []string{"file", "azurite"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				e := newEnv(b)
				in := e.activeInstance(b, "bench")
				seedKeys(b, e, in, n)
				d := benchDest(b, e, kind)
				folder := runBackup(b, e, in, d) // also the rollback point
				for b.Loop() {
					b.StopTimer()
					in = e.get(b, "bench") // each restore moves the epoch
					b.StartTimer()
					j, err := e.svc.StartRestore(context.Background(), in, d, folder)
					if err != nil {
						b.Fatal(err)
					}
					if j = e.wait(b, in, j.ID, RestoreKinds); j.Status != store.JobSucceeded || j.Done != n {
						b.Fatalf("restore: %+v", j)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "keys/s")
			})
		}
	}
}
