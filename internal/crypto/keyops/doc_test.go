package keyops_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentation checks that the package comment follows the house style
// and that every exported identifier carries a doc comment.
func TestDocumentation(t *testing.T) {
	checkDocs(t, ".", "keyops")
}

func checkDocs(t *testing.T, dir, name string) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != name {
			t.Fatalf("%s is in package %s, want %s", n, f.Name.Name, name)
		}
		files = append(files, f)
	}
	d, err := doc.NewFromFiles(fset, files, "tresor/internal/crypto/"+name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Doc, "Package "+name+" implements") {
		t.Errorf("package comment must start with %q", "Package "+name+" implements")
	}
	need := func(kind, ident, text string) {
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s %s has no doc comment", kind, ident)
		}
	}
	for _, v := range append(d.Vars, d.Consts...) {
		if v.Doc == "" {
			for _, n := range v.Names {
				if ast.IsExported(n) {
					need("value", n, "")
				}
			}
		}
	}
	for _, f := range d.Funcs {
		need("func", f.Name, f.Doc)
	}
	for _, ty := range d.Types {
		need("type", ty.Name, ty.Doc)
		for _, f := range ty.Funcs {
			need("func", f.Name, f.Doc)
		}
		for _, m := range ty.Methods {
			need("method", ty.Name+"."+m.Name, m.Doc)
		}
		for _, v := range append(ty.Vars, ty.Consts...) {
			if v.Doc == "" {
				for _, n := range v.Names {
					if ast.IsExported(n) {
						need("value", n, "")
					}
				}
			}
		}
	}
}
