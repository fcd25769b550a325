package securitydomain

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentation checks the package comment and that every exported
// identifier has a doc comment.
func TestDocumentation(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "tresor/internal/securitydomain")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Doc, "Package securitydomain implements") {
		t.Errorf("package doc starts %.40q", p.Doc)
	}
	check := func(kind, name, text string) {
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s %s has no doc comment", kind, name)
		}
	}
	checkValues := func(vs []*doc.Value) {
		for _, v := range vs {
			for _, spec := range v.Decl.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if n.IsExported() && v.Doc == "" && spec.(*ast.ValueSpec).Doc == nil && spec.(*ast.ValueSpec).Comment == nil {
						t.Errorf("%s has no doc comment", n.Name)
					}
				}
			}
		}
	}
	checkValues(p.Consts)
	checkValues(p.Vars)
	for _, f := range p.Funcs {
		check("func", f.Name, f.Doc)
	}
	for _, typ := range p.Types {
		check("type", typ.Name, typ.Doc)
		checkValues(typ.Consts)
		checkValues(typ.Vars)
		for _, f := range append(typ.Funcs, typ.Methods...) {
			check("func", typ.Name+"."+f.Name, f.Doc)
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
