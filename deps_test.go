package tresor_test

// The module's boundaries (design §7), enforced: which packages may import
// net/http and each external dependency, and what the client side (cli,
// client, wire) may never reach.

import (
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pkgInfo is what the rules need of a package: its direct imports
// (non-test files) and the files that import each.
type pkgInfo struct {
	ImportPath string
	Imports    []string
	GoFiles    []string
	Dir        string
}

// importRule: only the listed packages (module-relative, e.g.
// "internal/store") may import a package that is imp or under it.
type importRule struct {
	imp     string
	allowed []string
}

var importRules = []importRule{
	// The core never speaks HTTP: only the HTTP layer, the composition
	// root, the client side, the Azure blob backend, the metrics' exposition
	// handler, the web console (a client of the API handler, in process) and
	// (as a client of trusted issuers, in trusted.go only: see
	// fileRules) identity.
	{"net/http", []string{"internal/api", "internal/server", "internal/server/servertest", "internal/client", "internal/client/clienttest",
		"internal/cli", "internal/blob/azure", "internal/blob/azuritetest", "internal/identity", "internal/metrics", "internal/console"}},
	// One subpackage per external dependency.
	{"go.etcd.io/bbolt", []string{"internal/store"}},
	{"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob", []string{"internal/blob/azure", "internal/blob/azuritetest"}},
	{"github.com/hashicorp/raft", []string{"internal/store/raft"}},
	{"github.com/hashicorp/raft-boltdb", []string{"internal/store/raft"}},
	{"github.com/hashicorp/go-hclog", []string{"internal/store/raft"}}, // raft's logger, bridged to slog
	// The linearizability checker is for tests only.
	{"github.com/anishathalye/porcupine", nil},
	{"github.com/prometheus/client_golang", []string{"internal/metrics"}},
	{"github.com/spf13/cobra", []string{"cmd/tresor", "internal/cli", "internal/server"}},
}

// fileRules: within a package, only these files may import imp.
var fileRules = []struct {
	pkg, imp string
	files    []string
}{
	{"internal/identity", "net/http", []string{"trusted.go"}},
}

// clientSide are the packages that run on users' machines; serverOnly is
// what they must never reach, directly or through another package.
var (
	clientSide = []string{"internal/cli", "internal/client", "internal/wire"}
	serverOnly = []string{"internal/server", "internal/api", "internal/store", "internal/barrier", "internal/instances",
		"internal/policy", "internal/identity", "internal/keys", "internal/rbac", "internal/backup"}
)

const module = "tresor"

func TestBoundaries(t *testing.T) {
	pkgs := listPackages(t)
	for _, err := range checkBoundaries(pkgs) {
		t.Error(err)
	}
}

// TestBoundariesCatch shows the checker at work on made-up packages: a
// core package importing net/http or bbolt, a file of identity other than
// trusted.go importing net/http, and the client reaching keys through
// another package.
func TestBoundariesCatch(t *testing.T) {
	tests := map[string]struct {
		pkgs []pkgInfo
		want string
	}{
		"keys imports net/http": {[]pkgInfo{{ImportPath: "tresor/internal/keys", Imports: []string{"net/http"}}},
			"internal/keys imports net/http"},
		"backup imports bbolt": {[]pkgInfo{{ImportPath: "tresor/internal/backup", Imports: []string{"go.etcd.io/bbolt"}}},
			"internal/backup imports go.etcd.io/bbolt"},
		"porcupine outside tests": {[]pkgInfo{{ImportPath: "tresor/internal/store/raft", Imports: []string{"github.com/anishathalye/porcupine"}}},
			"internal/store/raft imports github.com/anishathalye/porcupine: only tests may"},
		"raft-boltdb outside store/raft": {[]pkgInfo{{ImportPath: "tresor/internal/store", Imports: []string{"github.com/hashicorp/raft-boltdb/v2"}}},
			"internal/store imports github.com/hashicorp/raft-boltdb/v2"},
		"bbolt subpackage": {[]pkgInfo{{ImportPath: "tresor/internal/keys", Imports: []string{"go.etcd.io/bbolt/errors"}}},
			"internal/keys imports go.etcd.io/bbolt/errors"},
		"client reaches keys": {[]pkgInfo{
			{ImportPath: "tresor/internal/client", Imports: []string{"tresor/internal/securitydomain"}},
			{ImportPath: "tresor/internal/securitydomain", Imports: []string{"tresor/internal/keys"}},
			{ImportPath: "tresor/internal/keys"},
		}, "internal/client reaches internal/keys: internal/client → internal/securitydomain → internal/keys"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			errs := checkBoundaries(tc.pkgs)
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one saying %q", errs, tc.want)
			}
		})
	}
	// A file rule, on the real identity package with a made-up file.
	pkgs := []pkgInfo{{ImportPath: "tresor/internal/identity", Imports: []string{"net/http"}, GoFiles: []string{"trusted.go", "token.go"}, Dir: "internal/identity"}}
	errs := checkFileRules(pkgs, func(dir, file string) ([]string, error) { return []string{"net/http"}, nil })
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "internal/identity/token.go imports net/http") {
		t.Fatalf("file rule errors %v", errs)
	}
}

func listPackages(t *testing.T) []pkgInfo {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, err := range checkFileRules(pkgs, fileImports) {
		t.Error(err)
	}
	return pkgs
}

func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

// checkBoundaries applies importRules and the client-side rule.
func checkBoundaries(pkgs []pkgInfo) []error {
	var errs []error
	byPath := map[string]pkgInfo{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			for _, r := range importRules {
				if under(imp, r.imp) && !slices.Contains(r.allowed, rel(p.ImportPath)) {
					who := "only " + strings.Join(r.allowed, ", ") + " may"
					if len(r.allowed) == 0 {
						who = "only tests may"
					}
					errs = append(errs, fmt.Errorf("%s imports %s: %s", rel(p.ImportPath), imp, who))
				}
			}
		}
	}
	for _, c := range clientSide {
		seen := map[string]bool{}
		var walk func(pkg string, path []string)
		walk = func(pkg string, path []string) {
			if seen[pkg] {
				return
			}
			seen[pkg] = true
			path = append(path, rel(pkg))
			for _, bad := range serverOnly {
				if under(rel(pkg), bad) {
					errs = append(errs, fmt.Errorf("%s reaches %s: %s", c, rel(pkg), strings.Join(path, " → ")))
					return
				}
			}
			for _, imp := range byPath[pkg].Imports {
				if imp == module || strings.HasPrefix(imp, module+"/") {
					walk(imp, path)
				}
			}
		}
		walk(module+"/"+c, nil)
	}
	return errs
}

// checkFileRules applies fileRules; imports reads a file's imports.
func checkFileRules(pkgs []pkgInfo, imports func(dir, file string) ([]string, error)) []error {
	var errs []error
	for _, r := range fileRules {
		for _, p := range pkgs {
			if rel(p.ImportPath) != r.pkg {
				continue
			}
			for _, f := range p.GoFiles {
				imps, err := imports(p.Dir, f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if slices.Contains(imps, r.imp) && !slices.Contains(r.files, f) {
					errs = append(errs, fmt.Errorf("%s/%s imports %s: only %s may", r.pkg, f, r.imp, strings.Join(r.files, ", ")))
				}
			}
		}
	}
	return errs
}

// fileImports reads the imports of one Go file.
func fileImports(dir, file string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, file), nil, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, imp := range f.Imports {
		out = append(out, strings.Trim(imp.Path.Value, `"`))
	}
	return out, nil
}
