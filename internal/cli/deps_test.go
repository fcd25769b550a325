package cli

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serverPackages are what the client side must never import (design §7).
var serverPackages = []string{
	"tresor/internal/server",
	"tresor/internal/api",
	"tresor/internal/store",
	"tresor/internal/barrier",
	"tresor/internal/instances",
	"tresor/internal/policy",
	"tresor/internal/identity",
	"tresor/internal/keys",
	"tresor/internal/backup", // backup list re-implements the little of its format it reads
}

// TestNoServerImports walks the module-internal imports of the non-test
// files of cli (and so client and wire) and fails on any server package.
func TestNoServerImports(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	seen := map[string]bool{}
	var visit func(pkg string, path []string)
	visit = func(pkg string, path []string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		for _, bad := range serverPackages {
			if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
				t.Errorf("client side imports %s: %s", pkg, strings.Join(append(path, pkg), " → "))
				return
			}
		}
		dir := filepath.Join(root, strings.TrimPrefix(pkg, "tresor/"))
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p := strings.Trim(imp.Path.Value, `"`)
				if p == "tresor" || strings.HasPrefix(p, "tresor/") {
					visit(p, append(path, pkg))
				}
			}
		}
	}
	visit("tresor/internal/cli", nil)
	for _, want := range []string{"tresor/internal/client", "tresor/internal/wire", "tresor/internal/blob", "tresor/internal/blob/container"} {
		if !seen[want] {
			t.Errorf("the walk never reached %s: is it broken?", want)
		}
	}
}
