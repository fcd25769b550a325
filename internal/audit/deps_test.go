package audit

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLeaf keeps the package a leaf of the standard library without
// net/http, so that the CLI (which verifies logs offline) may import it and
// the server's HTTP layer stays outside it.
func TestLeaf(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(strings.Split(p, "/")[0], ".") || p == "tresor" || strings.HasPrefix(p, "tresor/") || strings.HasPrefix(p, "net") {
				t.Errorf("%s imports %s: package audit imports only the standard library, without net", f, p)
			}
		}
	}
}
