package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"tresor/internal/cli"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/store"
)

// A server that cannot start says why in one line and stops; it never
// panics and never changes the data directory it refused.

// stoppedRegion returns the config of a dev region that has run (it has a
// seal, a store with a region in it, TLS files) and has been stopped.
func stoppedRegion(t *testing.T) server.Config {
	t.Helper()
	s := servertest.Start(t)
	s.Stop()
	return s.Config
}

// startupCase breaks a stopped region's data directory in one way.
type startupCase struct {
	// breakDir damages cfg's data directory; it may register cleanups.
	breakDir func(t *testing.T, cfg server.Config)
	// want are the parts of the one error line.
	want []string
	// needsModes: the case needs a user that file modes bind (not root).
	needsModes bool
}

func dbPath(cfg server.Config) string   { return filepath.Join(cfg.DataDir, "tresor.db") }
func sealPath(cfg server.Config) string { return filepath.Join(cfg.DataDir, "seal.key") }

func startupCases() map[string]startupCase {
	return map[string]startupCase{
		"locked by another server": {
			breakDir: func(t *testing.T, cfg server.Config) {
				st, err := store.OpenBolt(dbPath(cfg))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
			},
			want: []string{"data directory ", " is in use by another tresor server (lock held on ", "tresor.db)", "stop that server"},
		},
		"read-only data directory": {
			breakDir: func(t *testing.T, cfg server.Config) {
				chmodTree(t, cfg.DataDir, func(m fs.FileMode) fs.FileMode { return m &^ 0o222 })
			},
			want:       []string{"cannot open the store file ", "tresor.db for writing", "permission denied", "writable by the user that runs tresor"},
			needsModes: true,
		},
		"truncated tresor.db": {
			breakDir: func(t *testing.T, cfg server.Config) {
				fi, err := os.Stat(dbPath(cfg))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(dbPath(cfg), fi.Size()/2); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"the store file ", "tresor.db is damaged", "truncated", "restore it from a copy"},
		},
		"tresor.db cut to one page": {
			breakDir: func(t *testing.T, cfg server.Config) {
				if err := os.Truncate(dbPath(cfg), 4096); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"the store file ", "tresor.db is damaged", "restore it from a copy"},
		},
		"garbage tresor.db": {
			breakDir: func(t *testing.T, cfg server.Config) {
				junk := make([]byte, 32<<10)
				_, _ = rand.Read(junk)
				if err := os.WriteFile(dbPath(cfg), junk, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"the store file ", "tresor.db is damaged", "restore it from a copy"},
		},
		"a bbolt file that is not ours": {
			breakDir: func(t *testing.T, cfg server.Config) {
				if err := os.Remove(dbPath(cfg)); err != nil {
					t.Fatal(err)
				}
				db, err := bolt.Open(dbPath(cfg), 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(func(tx *bolt.Tx) error {
					b, err := tx.CreateBucket([]byte("widgets"))
					if err != nil {
						return err
					}
					return b.Put([]byte("w1"), []byte("blue"))
				})
				if err := errorsJoin(err, db.Close()); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"tresor.db is not a Tresor store", "another program's data", "a data directory of its own"},
		},
		"seal key file missing": {
			breakDir: func(t *testing.T, cfg server.Config) {
				if err := os.Remove(sealPath(cfg)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"the seal key file ", "seal.key is missing", "tresor.db holds a region sealed with it", "put the seal key file back"},
		},
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// chmodTree changes the mode of every file and directory under root,
// leaves first, and restores them at cleanup.
func chmodTree(t *testing.T, root string, mode func(fs.FileMode) fs.FileMode) {
	t.Helper()
	var paths []string
	modes := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		paths = append(paths, p)
		modes[p] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Chmod(paths[i], mode(modes[paths[i]])); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = os.Chmod(p, modes[p])
		}
	})
}

// snapshotDir returns every file under dir with its contents.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func checkOneLine(t *testing.T, line string, want []string) {
	t.Helper()
	if strings.Contains(line, "\n") || strings.Contains(line, "panic") {
		t.Errorf("not one line, or a panic: %q", line)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("%q does not say %q", line, w)
		}
	}
}

func TestStartupErrors(t *testing.T) {
	for name, tc := range startupCases() {
		t.Run(name, func(t *testing.T) {
			if tc.needsModes && os.Geteuid() == 0 {
				t.Skip("file modes do not bind root; TestStartupErrorsCommand runs this case as an unprivileged user")
			}
			cfg := stoppedRegion(t)
			tc.breakDir(t, cfg)
			before := snapshotDir(t, cfg.DataDir)
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				var s *server.Server
				s, err = server.New(context.Background(), cfg, io.Discard)
				if err == nil {
					s.Close()
				}
			}()
			if err == nil {
				t.Fatal("the server started")
			}
			checkOneLine(t, err.Error(), tc.want)
			after := snapshotDir(t, cfg.DataDir)
			for p, b := range before {
				if after[p] != b {
					t.Errorf("%s changed", p)
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

// Child processes of TestStartupErrorsCommand run the real command line,
// `tresor server …`, as main does (see TestMain).
const (
	cliChildEnv = "TRESOR_CLI_CHILD" // "1" in the child
	cliArgsEnv  = "TRESOR_CLI_ARGS"  // the child's arguments, as a JSON array
)

// runCLIChild runs the tresor command line with the arguments of
// cliArgsEnv, the way cmd/tresor's main does.
func runCLIChild() int {
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(cliArgsEnv)), &args); err != nil {
		fmt.Fprintf(os.Stderr, "cli child: %s: %v\n", cliArgsEnv, err)
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, args, os.Stdin, os.Stdout, os.Stderr, server.Command())
}

func TestStartupErrorsCommand(t *testing.T) {
	bin := os.Args[0]
	for name, tc := range startupCases() {
		t.Run(name, func(t *testing.T) {
			cfg := stoppedRegion(t)
			tc.breakDir(t, cfg)
			args, _ := json.Marshal([]string{"server", "--dev", "--data-dir", cfg.DataDir, "--listen", "127.0.0.1:0"})
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), cliChildEnv+"=1", cliArgsEnv+"="+string(args))
			if tc.needsModes && os.Geteuid() == 0 {
				runAsNobody(t, cmd, cfg.DataDir)
			}
			var stderr strings.Builder
			stdout := &killOnListen{cmd: cmd}
			cmd.Stdout, cmd.Stderr = stdout, &stderr
			err := cmd.Run()
			if stdout.started {
				t.Fatalf("the server started: %q", stdout.b.String())
			}
			code := cmd.ProcessState.ExitCode()
			if err != nil && code == -1 {
				t.Fatal(err)
			}
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			line, ok := strings.CutSuffix(stderr.String(), "\n")
			if !ok || !strings.HasPrefix(line, "tresor: error: ") {
				t.Errorf("stderr is not one tresor error line: %q", stderr.String())
			}
			checkOneLine(t, line, tc.want)
		})
	}
}

// killOnListen collects a child's stdout and kills the child as soon as
// it says it is listening: a server that should have refused to start
// fails the test instead of running forever.
type killOnListen struct {
	cmd     *exec.Cmd
	b       strings.Builder
	started bool
}

func (w *killOnListen) Write(p []byte) (int, error) {
	w.b.Write(p)
	if !w.started && strings.Contains(w.b.String(), " listening on ") {
		w.started = true
		_ = w.cmd.Process.Kill()
	}
	return len(p), nil
}

// nobody is the unprivileged user a root test runs mode-bound cases as.
const nobody = 65534

// runAsNobody makes cmd run as the unprivileged user nobody on dataDir:
// the test binary is copied where nobody can run it, dataDir's tree is
// given to nobody (keeping its modes) and the directories above it are
// made traversable. Cleanups give everything back.
func runAsNobody(t *testing.T, cmd *exec.Cmd, dataDir string) {
	t.Helper()
	binDir := t.TempDir()
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(cmd.Path)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "server.test")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Path, cmd.Args[0] = bin, bin
	for dir := filepath.Dir(dataDir); dir != "/" && dir != os.TempDir(); dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, fi.Mode().Perm()|0o055); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, fi.Mode().Perm()) })
	}
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				_ = os.Lchown(p, 0, 0)
			}
			return nil
		})
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}

// damagePagesHolding overwrites the header (type and count) of every leaf
// page in use in the bbolt file at path that holds name, and returns how
// many it damaged.
func damagePagesHolding(t *testing.T, path string, name []byte) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	pageSize := db.Info().PageSize
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; int64(id*pageSize) < tx.Size(); id++ {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			if info == nil || info.Type != "leaf" {
				continue
			}
			end := (id + 1 + info.OverflowCount) * pageSize
			if bytes.Contains(raw[id*pageSize:end], name) {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err := errorsJoin(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, id := range ids {
		// Page header: id (8 bytes), flags (2), count (2), overflow (4).
		if _, err := f.WriteAt([]byte{0x5a, 0xa5, 0xff, 0xff}, int64(id*pageSize+8)); err != nil {
			t.Fatal(err)
		}
	}
	return len(ids)
}

// A damaged page met while serving fails that request with a 500 in
// Azure's error body and a log line with its request id; the connection
// is answered, not dropped, and the server goes on serving.
func TestDamagedPageWhileServing(t *testing.T) {
	d := newDrill(t)
	d.create("damaged")
	d.activate("damaged", "sd1", "sd2", "sd3")
	d.seedKeys("damaged", 40) // enough for the keys to have leaf pages of their own
	code, _, body := d.c.do("GET", d.url("damaged", "/keys/Key-0020"), d.hsm, nil)
	if code != 200 {
		t.Fatalf("get key: %d %s", code, body)
	}
	first := d.s
	first.Stop()
	if n := damagePagesHolding(t, dbPath(first.Config), []byte("key-0020")); n == 0 {
		t.Fatal("no page holds the key")
	}

	var logs lockedBuffer
	s := servertest.StartConfigLog(t, first.Config, &logs)
	s.ClientID, s.ClientSecret, s.ObjectID = first.ClientID, first.ClientSecret, first.ObjectID
	c := newCall(t, s)
	hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	url := s.HSMURL("damaged") + "/keys/Key-0020?api-version=7.5"
	code, hdr, body := c.do("GET", url, hsm, nil)
	wantError(t, code, body, http.StatusInternalServerError, "InternalError")
	id := hdr.Get("x-ms-request-id")
	if id == "" || !strings.Contains(string(body), id) {
		t.Errorf("the body does not name the request id %q: %s", id, body)
	}
	var line string
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, id) && strings.Contains(l, "level=ERROR") {
			line = l
		}
	}
	if line == "" {
		t.Errorf("no error log line with request id %s:\n%s", id, logs.String())
	}
	// The server still serves: the control plane, and the HSM itself.
	arm := s.AdminToken(t)
	if code, _, body := c.do("GET", c.hsmPath("damaged"), arm, nil); code != 200 {
		t.Errorf("get HSM after the damaged read: %d %s", code, body)
	}
	if code, _, body := c.do("GET", s.HSMURL("damaged")+"/keys/Key-0020?api-version=7.5", hsm, nil); code != http.StatusInternalServerError {
		t.Errorf("second read of the damaged key: %d %s", code, body)
	}
}
