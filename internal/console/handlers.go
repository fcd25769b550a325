package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"tresor/internal/client"
)

// Body limits of the console's forms: certificates and upload blobs come
// in multipart forms, everything else is small.
const (
	smallForm = 64 << 10
	fileForm  = 2 << 20
)

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+Prefix+"/{$}", c.home)
	m.Handle("GET "+Prefix+"/static/", c.static)
	m.HandleFunc("GET "+Prefix+"/signin", c.signinPage)
	m.HandleFunc("POST "+Prefix+"/signin", c.signinPost)
	m.HandleFunc("POST "+Prefix+"/signout", c.post(smallForm, c.signout))
	m.HandleFunc("POST "+Prefix+"/oidc/start", c.oidcStart)
	m.HandleFunc("GET "+Prefix+"/oidc/callback", c.oidcCallback)
	m.HandleFunc("GET "+Prefix+"/download/{id}", c.get(c.download))

	m.HandleFunc("GET "+Prefix+"/region", c.get(c.regionPage))
	m.HandleFunc("POST "+Prefix+"/hsms", c.post(smallForm, c.createHSM))
	m.HandleFunc("POST "+Prefix+"/deleted/{loc}/{name}/{action}", c.post(smallForm, c.deletedHSMAction))

	m.HandleFunc("GET "+Prefix+"/hsm/{hsm}", c.get(c.hsmPage))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/delete", c.post(smallForm, c.deleteHSM))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/activate", c.post(fileForm, c.activate))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/recovery", c.post(smallForm, c.recovery))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/upload", c.post(fileForm, c.uploadSD))

	m.HandleFunc("GET "+Prefix+"/hsm/{hsm}/keys", c.get(c.keysPage))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/keys", c.post(smallForm, c.createKey))
	m.HandleFunc("GET "+Prefix+"/hsm/{hsm}/keys/{key}", c.get(c.keyPage))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/keys/{key}/{action}", c.post(smallForm, c.keyAction))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/deletedkeys/{key}/{action}", c.post(smallForm, c.deletedKeyAction))

	m.HandleFunc("GET "+Prefix+"/hsm/{hsm}/roles", c.get(c.rolesPage))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/roles", c.post(smallForm, c.assignRole))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/roles/{assignment}/delete", c.post(smallForm, c.removeRole))

	m.HandleFunc("GET "+Prefix+"/hsm/{hsm}/backups", c.get(c.backupsPage))
	m.HandleFunc("POST "+Prefix+"/hsm/{hsm}/backups/{action}", c.post(smallForm, c.backupAction))
}

// sessionOf returns the request's live session, if any.
func (c *Console) sessionOf(r *http.Request) (*session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	return c.sessions.get(ck.Value)
}

type pageHandler func(w http.ResponseWriter, r *http.Request, s *session)

// get serves a page to a signed-in session; others go to the sign-in page.
func (c *Console) get(h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.sessionOf(r)
		if !ok {
			clearCookie(w, sessionCookie)
			http.Redirect(w, r, Prefix+"/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, s)
	}
}

// actionHandler performs a form's action and returns where to go next.
type actionHandler func(r *http.Request, s *session) string

// post runs a state-changing form: a live session, a body of at most limit
// bytes and the session's CSRF token are required (cross-site requests
// were refused in ServeHTTP); the answer is a redirect (303) to the page
// the action names, which shows its outcome.
func (c *Console) post(limit int64, h actionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.sessionOf(r)
		if !ok {
			clearCookie(w, sessionCookie)
			c.render(w, r, nil, http.StatusUnauthorized, "error", view{Title: "Not signed in",
				Flash: []flash{{Error: true, Code: "Unauthorized", Message: "this session has ended or never existed: sign in again"}}})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(limit)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			c.render(w, r, s, http.StatusBadRequest, "error", view{Title: "Bad request",
				Flash: []flash{{Error: true, Code: "BadRequest", Message: "the form could not be read: " + err.Error()}}})
			return
		}
		if !s.checkCSRF(r.PostForm.Get("csrf")) {
			c.log.Warn("console: form without a valid CSRF token refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			c.render(w, r, s, http.StatusForbidden, "error", view{Title: "Refused",
				Flash: []flash{{Error: true, Code: "CSRFTokenInvalid", Message: "the form's CSRF token is missing or wrong: reload the page and try again"}}})
			return
		}
		next := h(r, s)
		if next == "" {
			next = Prefix + "/region"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

func setSessionCookie(w http.ResponseWriter, s *session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionOf(r); ok {
		http.Redirect(w, r, Prefix+"/region", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// signinData is the sign-in page's.
type signinData struct {
	Pre, Next, ClientID, Tenant string
	Issuers                     []string // the trusted issuers to sign in through
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, signinData{Next: safeNext(r.URL.Query().Get("next"))}, nil)
}

// renderSignin renders the sign-in form with a fresh pre-session CSRF
// token (double submit: cookie and form field must match).
func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, d signinData, fl []flash) {
	d.Pre = randomID(32)
	d.Issuers = nil
	for _, is := range c.cfg.Issuers {
		d.Issuers = append(d.Issuers, is.Issuer)
	}
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: d.Pre, Path: "/", MaxAge: 600, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.render(w, r, nil, status, "signin", view{Title: "Sign in", Data: d, Flash: fl})
}

// safeNext keeps a post-sign-in target inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return Prefix + "/region"
	}
	return next
}

func (c *Console) signinPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, smallForm)
	if err := r.ParseForm(); err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, signinData{}, []flash{{Error: true, Code: "BadRequest", Message: err.Error()}})
		return
	}
	d := signinData{Next: safeNext(r.PostForm.Get("next")), ClientID: strings.TrimSpace(r.PostForm.Get("client_id")), Tenant: strings.TrimSpace(r.PostForm.Get("tenant"))}
	ck, err := r.Cookie(preCookie)
	if err != nil || ck.Value == "" || !(&session{csrf: ck.Value}).checkCSRF(r.PostForm.Get("csrf")) {
		c.renderSignin(w, r, http.StatusForbidden, d, []flash{{Error: true, Code: "CSRFTokenInvalid", Message: "the sign-in form's CSRF token is missing or wrong: try again"}})
		return
	}
	secret := r.PostForm.Get("client_secret")
	if d.ClientID == "" || secret == "" {
		c.renderSignin(w, r, http.StatusBadRequest, d, []flash{{Error: true, Code: "BadRequest", Message: "client id and client secret are required"}})
		return
	}
	s, err := c.signIn(ctx(r), d.Tenant, d.ClientID, secret)
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, errTooManySessions) {
			status = http.StatusServiceUnavailable
		}
		c.renderSignin(w, r, status, d, []flash{errorFlash(err)})
		return
	}
	// A session this browser had before ends: one sign-in, one session.
	if old, ok := c.sessionOf(r); ok {
		c.sessions.delete(old.id)
	}
	clearCookie(w, preCookie)
	setSessionCookie(w, s)
	c.log.Info("console: signed in", "objectId", s.account.ObjectID, "remote", r.RemoteAddr)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (c *Console) signout(r *http.Request, s *session) string {
	c.sessions.delete(s.id)
	c.log.Info("console: signed out", "objectId", s.account.ObjectID)
	return Prefix + "/signin"
}

func (c *Console) download(w http.ResponseWriter, r *http.Request, s *session) {
	d, ok := s.takeDownload(r.PathValue("id"), c.cfg.Now())
	if !ok {
		c.render(w, r, s, http.StatusNotFound, "error", view{Title: "Gone",
			Flash: []flash{{Error: true, Code: "NotFound", Message: "this file was downloaded already or has expired"}}})
		return
	}
	w.Header().Set("Content-Type", d.contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.NewReplacer(`"`, "", "\\", "").Replace(d.name)+`"`)
	_, _ = w.Write(d.data)
}

// api returns the session's API client and the HSM's data-plane URL
// (when hsm is not ""), or the flash that says why not.
func (c *Console) api(r *http.Request, s *session, hsm string) (context.Context, *client.Client, string, error) {
	cx := ctx(r)
	cl, err := c.client(s)
	if err != nil {
		return cx, nil, "", err
	}
	if hsm == "" {
		return cx, cl, "", nil
	}
	u, err := cl.HSMURL(cx, hsm)
	return cx, cl, u, err
}

// hsmPath is the console page of an HSM (and a section of it).
func hsmPath(hsm string, section ...string) string {
	p := Prefix + "/hsm/" + url.PathEscape(hsm)
	for _, s := range section {
		p += "/" + s
	}
	return p
}
