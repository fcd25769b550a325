// Package pkgdoc implements the documentation check that the packages' tests
// run (the house style's rule 19): the package comment starts "Package x
// implements", and every exported identifier has a doc comment.
//
// A package checks itself with a test like
//
//	func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }
//
// or, to require doc comments on struct fields too, [CheckWithFields].
package pkgdoc

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

// Check parses the non-test Go files in dir and reports, as errors of t, a
// package comment that does not start "Package <name> implements" and every
// exported constant, variable, function, type and method without a doc
// comment (a value may also carry a line comment).
func Check(t testing.TB, dir string) {
	t.Helper()
	check(t, dir, false)
}

// CheckWithFields is [Check] that also requires a doc or line comment on
// every exported field of an exported struct type.
func CheckWithFields(t testing.TB, dir string) {
	t.Helper()
	check(t, dir, true)
}

func check(t testing.TB, dir string, fields bool) {
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
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	name := files[0].Name.Name
	for _, f := range files[1:] {
		if f.Name.Name != name {
			t.Fatalf("%s holds packages %s and %s", dir, name, f.Name.Name)
		}
	}
	p, err := doc.NewFromFiles(fset, files, name)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Package " + name + " implements"; !strings.HasPrefix(p.Doc, want) {
		t.Errorf("package doc starts %.40q, want %q", p.Doc, want+" …")
	}
	need := func(kind, ident, text string) {
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s %s has no doc comment", kind, ident)
		}
	}
	checkValues := func(values []*doc.Value) {
		for _, v := range values {
			for _, spec := range v.Decl.Specs {
				vs := spec.(*ast.ValueSpec)
				for _, n := range vs.Names {
					if n.IsExported() && v.Doc == "" && vs.Doc == nil && vs.Comment == nil {
						t.Errorf("value %s has no doc comment", n.Name)
					}
				}
			}
		}
	}
	checkValues(p.Consts)
	checkValues(p.Vars)
	for _, f := range p.Funcs {
		need("func", f.Name, f.Doc)
	}
	for _, typ := range p.Types {
		need("type", typ.Name, typ.Doc)
		checkValues(typ.Consts)
		checkValues(typ.Vars)
		for _, f := range typ.Funcs {
			need("func", f.Name, f.Doc)
		}
		for _, m := range typ.Methods {
			need("method", typ.Name+"."+m.Name, m.Doc)
		}
		if !fields {
			continue
		}
		for _, spec := range typ.Decl.Specs {
			st, ok := spec.(*ast.TypeSpec).Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				for _, n := range field.Names {
					if n.IsExported() && field.Doc == nil && field.Comment == nil {
						t.Errorf("field %s.%s has no doc comment", typ.Name, n.Name)
					}
				}
			}
		}
	}
}
