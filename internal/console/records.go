package console

import (
	"strings"
	"sync"
	"time"
)

// Kinds of job the console starts.
const (
	kindBackup     = "backup"
	kindRestore    = "restore"
	kindKeyRestore = "key restore"
	kindDrill      = "drill" // a pre-restore check of a folder
)

// jobRef is a job started through the console: only its id and what it
// was asked to do. Its status is always read from the API, with the
// viewer's token, so the list grants nothing: a viewer without the backup
// status action sees the API's refusal for each.
type jobRef struct {
	ID        string
	Kind      string
	Started   time.Time
	Container string // the storage resource URI
	Folder    string // the folder restored or checked
	Key       string // the key of a selective restore
	By        string // the object id that started it
}

// route is the job's status route on the data plane.
func (j jobRef) route() string {
	if j.Kind == kindBackup {
		return "backup"
	}
	return "restore"
}

// maxRecords bounds the jobs kept per HSM (the newest are kept).
const maxRecords = 200

// records are the jobs started through the console, per HSM, in memory
// (a restart forgets them; the jobs themselves are the region's). The API
// has no route that lists jobs, so this is how the console finds them.
type records struct {
	mu    sync.Mutex
	byHSM map[string][]jobRef
}

func newRecords() *records { return &records{byHSM: map[string][]jobRef{}} }

func (r *records) add(hsm string, j jobRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := strings.ToLower(hsm)
	l := append(r.byHSM[k], j)
	if len(l) > maxRecords {
		l = l[len(l)-maxRecords:]
	}
	r.byHSM[k] = l
}

// list returns the HSM's jobs, newest first.
func (r *records) list(hsm string) []jobRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.byHSM[strings.ToLower(hsm)]
	out := make([]jobRef, len(l))
	for i, j := range l {
		out[len(l)-1-i] = j
	}
	return out
}
