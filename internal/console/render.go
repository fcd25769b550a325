package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"tresor/internal/client"
)

// pageTemplate is the layout with one page's content.
type pageTemplate struct{ t *template.Template }

// pageNames are the templates/*.html files that are pages (layout.html is
// the frame around each).
var pageNames = []string{"signin", "region", "hsm", "keys", "key", "roles", "backups", "error", "continue"}

var funcs = template.FuncMap{
	"ts":       timeTag,
	"keyName":  keyName,
	"keyVer":   keyVersion,
	"path":     url.PathEscape,
	"joinTags": joinTags,
	"deref":    deref,
	"lower":    strings.ToLower,
	"rg":       client.ResourceGroup,
}

func parsePages() (map[string]*pageTemplate, error) {
	out := map[string]*pageTemplate{}
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		out[n] = &pageTemplate{t: t}
	}
	return out, nil
}

// view is what every page gets.
type view struct {
	Title     string
	Nav       string // the current section: region, hsm, keys, roles, backups
	Signed    bool
	Account   accountInfo
	CSRF      string
	Flash     []flash
	Downloads map[string]string // id → file name, waiting for the session
	Region    string
	HSM       string // the current HSM's name, if any
	Data      any
}

// render writes a page with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, v view) {
	if s != nil {
		v.Signed, v.Account, v.CSRF = true, s.account, s.csrf
		v.Flash = append(v.Flash, s.takeFlash()...)
		v.Downloads = s.pendingDownloads(c.cfg.Now())
	}
	v.Region = c.regionName()
	var buf bytes.Buffer
	if err := c.pages[name].t.Execute(&buf, v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the console could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// timeTag renders a time as <time datetime=…> in UTC; console.js rewrites
// its text in the viewer's time zone. It takes time.Time, *time.Time,
// unix seconds (int64, *int64) and RFC 3339 strings (string, *string).
func timeTag(v any) template.HTML {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	case int64:
		t = time.Unix(x, 0)
	case *int64:
		if x != nil {
			t = time.Unix(*x, 0)
		}
	case string:
		t, _ = time.Parse(time.RFC3339, x)
	case *string:
		if x != nil {
			t, _ = time.Parse(time.RFC3339, *x)
		}
	}
	if t.IsZero() {
		return "—"
	}
	u := t.UTC()
	return template.HTML(fmt.Sprintf(`<time datetime="%s">%s</time>`, u.Format(time.RFC3339), u.Format("2006-01-02 15:04:05 UTC")))
}

// keyName and keyVersion take a key id https://{hsm}/keys/{name}[/{version}] apart.
func keyName(kid string) string {
	parts := kidParts(kid)
	if len(parts) >= 2 {
		return parts[1]
	}
	return kid
}

func keyVersion(kid string) string {
	parts := kidParts(kid)
	if len(parts) >= 3 {
		return parts[2]
	}
	return ""
}

func kidParts(kid string) []string {
	u, err := url.Parse(kid)
	if err != nil {
		return nil
	}
	return strings.Split(strings.Trim(path.Clean(u.Path), "/"), "/")
}

// joinTags renders tags as "k=v, k=v", sorted.
func joinTags(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// parseTags reads "k=v, k=v" (commas or new lines between pairs).
func parseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("tag %q: want name=value", p)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

func deref(v any) any {
	switch x := v.(type) {
	case *bool:
		if x == nil {
			return false
		}
		return *x
	case *int:
		if x == nil {
			return 0
		}
		return *x
	case *string:
		if x == nil {
			return ""
		}
		return *x
	}
	return v
}
