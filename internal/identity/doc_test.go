package identity

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
	fset, files := parsePackage(t)
	pkg, err := doc.NewFromFiles(fset, files, "tresor/internal/identity")
	check(t, err)
	if !strings.HasPrefix(pkg.Doc, "Package identity implements ") {
		t.Errorf("package doc starts %.40q, want \"Package identity implements …\"", pkg.Doc)
	}
	undocumented := func(kind, name string) { t.Errorf("%s %s has no doc comment", kind, name) }
	checkValues := func(values []*doc.Value) {
		for _, v := range values {
			if v.Doc != "" {
				continue
			}
			for _, spec := range v.Decl.Specs {
				vs := spec.(*ast.ValueSpec)
				for _, n := range vs.Names {
					if n.IsExported() && vs.Doc == nil && vs.Comment == nil {
						undocumented("value", n.Name)
					}
				}
			}
		}
	}
	checkValues(pkg.Consts)
	checkValues(pkg.Vars)
	for _, f := range pkg.Funcs {
		if f.Doc == "" {
			undocumented("func", f.Name)
		}
	}
	for _, typ := range pkg.Types {
		if typ.Doc == "" {
			undocumented("type", typ.Name)
		}
		checkValues(typ.Consts)
		checkValues(typ.Vars)
		for _, f := range typ.Funcs {
			if f.Doc == "" {
				undocumented("func", f.Name)
			}
		}
		for _, m := range typ.Methods {
			if m.Doc == "" && ast.IsExported(m.Name) {
				undocumented("method", typ.Name+"."+m.Name)
			}
		}
	}
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
