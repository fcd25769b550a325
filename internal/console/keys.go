package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// keysPerPage is the keys list's page size.
const keysPerPage = 25

// keysData is the keys page's.
type keysData struct {
	Name         string
	Filter       string
	Keys         []wire.KeyItem
	Total        int // after the filter
	Page, Pages  int
	PrevURL      string
	NextURL      string
	Error        *flash
	Deleted      []wire.DeletedKeyItem
	DeletedError *flash
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("hsm")
	q := r.URL.Query()
	d := keysData{Name: name, Filter: strings.TrimSpace(q.Get("filter")), Page: 1}
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p > 0 {
		d.Page = p
	}
	status := http.StatusOK
	cx, cl, hsmURL, err := c.api(r, s, name)
	var all []wire.KeyItem
	if err == nil {
		all, err = cl.ListKeys(cx, hsmURL, 0)
	}
	if err != nil {
		f := errorFlash(err)
		d.Error = &f
		status = statusOf(err)
	}
	var kept []wire.KeyItem
	for _, k := range all {
		if d.Filter == "" || strings.Contains(strings.ToLower(keyName(k.Kid)), strings.ToLower(d.Filter)) {
			kept = append(kept, k)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return keyName(kept[i].Kid) < keyName(kept[j].Kid) })
	d.Total = len(kept)
	d.Pages = max(1, (len(kept)+keysPerPage-1)/keysPerPage)
	d.Page = min(d.Page, d.Pages)
	from := (d.Page - 1) * keysPerPage
	d.Keys = kept[from:min(from+keysPerPage, len(kept))]
	pageURL := func(p int) string {
		v := url.Values{"page": {strconv.Itoa(p)}}
		if d.Filter != "" {
			v.Set("filter", d.Filter)
		}
		return hsmPath(name, "keys") + "?" + v.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = pageURL(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = pageURL(d.Page + 1)
	}
	if err == nil {
		if d.Deleted, err = cl.ListDeletedKeys(cx, hsmURL, 0); err != nil {
			f := errorFlash(err)
			d.DeletedError = &f
		}
	}
	c.render(w, r, s, status, "keys", view{Title: "Keys of " + name, Nav: "keys", HSM: name, Data: d})
}

// statusOf is an API error's HTTP status (500 for others).
func statusOf(err error) int {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status >= 400 {
		return ae.Status
	}
	return http.StatusInternalServerError
}

func (c *Console) createKey(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	f := r.PostForm
	key := strings.TrimSpace(f.Get("name"))
	p := wire.KeyCreateParameters{Kty: f.Get("kty")}
	switch {
	case strings.HasPrefix(p.Kty, "RSA"):
		if n, err := strconv.Atoi(f.Get("size")); err == nil {
			p.KeySize = &n
		}
	case strings.HasPrefix(p.Kty, "EC"):
		p.Curve = f.Get("curve")
	case strings.HasPrefix(p.Kty, "oct"):
		if n, err := strconv.Atoi(f.Get("size")); err == nil && n != 2048 && n != 3072 && n != 4096 {
			p.KeySize = &n
		} else {
			n := 256
			p.KeySize = &n
		}
	}
	tags, err := parseTags(f.Get("tags"))
	if err != nil {
		s.addFlash(flash{Error: true, Code: "BadParameter", Message: err.Error()})
		return hsmPath(name, "keys")
	}
	if len(tags) > 0 {
		p.Tags = tags
	}
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err == nil {
		_, err = cl.CreateKey(cx, hsmURL, key, p)
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return hsmPath(name, "keys")
	}
	s.addFlash(flash{Message: "Created the key " + key + "."})
	return hsmPath(name, "keys", url.PathEscape(key))
}

// keyData is a key's page's.
type keyData struct {
	HSM, Name   string
	Key         *wire.KeyBundle
	Error       *flash
	Versions    []wire.KeyItem
	VersionsErr *flash
	Policy      *wire.KeyRotationPolicy
	PolicyErr   *flash
	Enabled     bool
}

func (c *Console) keyPage(w http.ResponseWriter, r *http.Request, s *session) {
	hsm, key := r.PathValue("hsm"), r.PathValue("key")
	d := keyData{HSM: hsm, Name: key}
	status := http.StatusOK
	cx, cl, hsmURL, err := c.api(r, s, hsm)
	if err == nil {
		d.Key, err = cl.GetKey(cx, hsmURL, key, "")
	}
	if err != nil {
		f := errorFlash(err)
		d.Error = &f
		status = statusOf(err)
	} else {
		d.Enabled = d.Key.Attributes.Enabled != nil && *d.Key.Attributes.Enabled
		if d.Versions, err = cl.ListKeyVersions(cx, hsmURL, key, 0); err != nil {
			f := errorFlash(err)
			d.VersionsErr = &f
		}
		sort.Slice(d.Versions, func(i, j int) bool {
			return created(d.Versions[i]) > created(d.Versions[j])
		})
		if d.Policy, err = cl.GetKeyRotationPolicy(cx, hsmURL, key); err != nil {
			f := errorFlash(err)
			d.PolicyErr = &f
		}
	}
	c.render(w, r, s, status, "key", view{Title: key, Nav: "keys", HSM: hsm, Data: d})
}

func created(k wire.KeyItem) int64 {
	if k.Attributes.Created == nil {
		return 0
	}
	return *k.Attributes.Created
}

func (c *Console) keyAction(r *http.Request, s *session) string {
	hsm, key, action := r.PathValue("hsm"), r.PathValue("key"), r.PathValue("action")
	back := hsmPath(hsm, "keys", url.PathEscape(key))
	cx, cl, hsmURL, err := c.api(r, s, hsm)
	msg := ""
	if err == nil {
		switch action {
		case "rotate":
			_, err = cl.RotateKey(cx, hsmURL, key)
			msg = "Rotated the key " + key + ": a new version is current."
		case "enable", "disable":
			on := action == "enable"
			_, err = cl.UpdateKey(cx, hsmURL, key, "", client.KeyUpdate{Attributes: &wire.KeyAttributes{Enabled: &on}})
			msg = "The key " + key + " is " + action + "d."
		case "tags":
			var tags map[string]string
			if tags, err = parseTags(r.PostForm.Get("tags")); err == nil {
				_, err = cl.UpdateKey(cx, hsmURL, key, "", client.KeyUpdate{Tags: tags})
			}
			msg = "Updated the tags of " + key + "."
		case "rotationpolicy":
			p := wire.KeyRotationPolicy{LifetimeActions: []wire.LifetimeAction{}}
			if v := strings.TrimSpace(r.PostForm.Get("rotate_after")); v != "" {
				p.LifetimeActions = append(p.LifetimeActions, wire.LifetimeAction{
					Trigger: wire.LifetimeActionTrigger{TimeAfterCreate: v}, Action: wire.LifetimeActionType{Type: "Rotate"}})
			}
			if v := strings.TrimSpace(r.PostForm.Get("expiry")); v != "" {
				p.Attributes = &wire.KeyRotationPolicyAttribs{ExpiryTime: v}
			}
			_, err = cl.UpdateKeyRotationPolicy(cx, hsmURL, key, p)
			msg = "Set the rotation policy of " + key + "."
		case "delete":
			_, err = cl.DeleteKey(cx, hsmURL, key)
			msg = "Deleted the key " + key + ": it can be recovered until its purge date."
			back = hsmPath(hsm, "keys")
		default:
			err = errors.New("unknown key action " + action)
		}
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return hsmPath(hsm, "keys", url.PathEscape(key))
	}
	s.addFlash(flash{Message: msg})
	return back
}

func (c *Console) deletedKeyAction(r *http.Request, s *session) string {
	hsm, key := r.PathValue("hsm"), r.PathValue("key")
	cx, cl, hsmURL, err := c.api(r, s, hsm)
	msg := ""
	if err == nil {
		switch r.PathValue("action") {
		case "recover":
			_, err = cl.RecoverDeletedKey(cx, hsmURL, key)
			msg = "Recovered the key " + key + "."
		case "purge":
			err = cl.PurgeDeletedKey(cx, hsmURL, key)
			msg = "Purged the key " + key + "."
		default:
			err = errors.New("unknown action")
		}
	}
	if err != nil {
		s.addFlash(errorFlash(err))
	} else {
		s.addFlash(flash{Message: msg})
	}
	return hsmPath(hsm, "keys")
}
