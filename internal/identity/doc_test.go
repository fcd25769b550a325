package identity

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tresor/internal/pkgdoc"
)

// parsePackage parses the package's non-test files.
func parsePackage(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	check(t, err)
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		check(t, err)
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		check(t, err)
		files = append(files, f)
	}
	return fset, files
}

// TestPackageDocumented checks the package comment and that every exported
// identifier has a doc comment.
func TestPackageDocumented(t *testing.T) {
	pkgdoc.Check(t, ".")
}

// TestImports keeps the package a pure core: no HTTP serving, no storage, and
// net/http (as a client) only in trusted.go.
func TestImports(t *testing.T) {
	forbidden := []string{"net/http/httptest", "go.etcd.io/bbolt", "github.com/hashicorp/raft", "tresor/internal/"}
	fset, files := parsePackage(t)
	for _, f := range files {
		name := filepath.Base(fset.Position(f.Package).Filename)
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			check(t, err)
			for _, bad := range forbidden {
				if strings.HasPrefix(path, bad) {
					t.Errorf("%s imports %s", name, path)
				}
			}
			if path == "net/http" && name != "trusted.go" {
				t.Errorf("%s imports net/http; only trusted.go may (as a client)", name)
			}
		}
	}
}
