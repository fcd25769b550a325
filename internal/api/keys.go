package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"tresor/internal/crypto/keyops"
	"tresor/internal/fault"
	"tresor/internal/keys"
	"tresor/internal/wire"
)

// b64 decodes base64url, with or without padding (clients differ).
func b64(field, s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fault.New(fault.BadParameter, "BadParameter", "%s is not valid base64url", field)
	}
	return b, nil
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func kid(r *http.Request, name, version string) string {
	return hsmBase(r) + "/keys/" + name + "/" + version
}

func ptr[T any](v T) *T { return &v }

func (a *API) keyAttributes(rc *reqCtx, at keys.Attributes) wire.KeyAttributes {
	level, days := keys.RecoveryLevel(rc.instance)
	out := wire.KeyAttributes{
		Enabled: ptr(at.Enabled), Created: ptr(at.Created.Unix()), Updated: ptr(at.Updated.Unix()),
		RecoverableDays: ptr(days), RecoveryLevel: level, Exportable: ptr(at.Exportable), HSMPlatform: "2",
	}
	if at.NotBefore != nil {
		out.NotBefore = ptr(at.NotBefore.Unix())
	}
	if at.Expires != nil {
		out.Expires = ptr(at.Expires.Unix())
	}
	return out
}

func (a *API) keyBundle(r *http.Request, rc *reqCtx, v keys.Version) wire.KeyBundle {
	j := v.Public
	out := wire.KeyBundle{
		Key:        wire.JSONWebKey{Kid: kid(r, v.Name, v.Version), Kty: j.Kty, KeyOps: v.KeyOps, N: j.N, E: j.E, Crv: j.Crv, X: j.X, Y: j.Y},
		Attributes: a.keyAttributes(rc, v.Attributes),
		Tags:       v.Tags,
	}
	if out.Key.KeyOps == nil {
		out.Key.KeyOps = []string{}
	}
	if len(v.ReleasePolicy) > 0 {
		var rp wire.KeyReleasePolicy
		if json.Unmarshal(v.ReleasePolicy, &rp) == nil {
			out.ReleasePolicy = &rp
		}
	}
	return out
}

func (a *API) deletedBundle(r *http.Request, rc *reqCtx, v keys.Version) wire.DeletedKeyBundle {
	return wire.DeletedKeyBundle{
		KeyBundle: a.keyBundle(r, rc, v), RecoveryID: hsmBase(r) + "/deletedkeys/" + v.Name,
		DeletedDate: ptr(v.DeletedDate.Unix()), ScheduledPurgeDate: ptr(v.ScheduledPurgeDate.Unix()),
	}
}

func attrChange(at *wire.KeyAttributes) keys.AttrChange {
	if at == nil {
		return keys.AttrChange{}
	}
	return keys.AttrChange{Enabled: at.Enabled, NotBefore: at.NotBefore, Expires: at.Expires, Exportable: at.Exportable}
}

func releasePolicy(rp *wire.KeyReleasePolicy) json.RawMessage {
	if rp == nil {
		return nil
	}
	b, _ := json.Marshal(rp)
	return b
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.KeyCreateParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	cp := keys.CreateParams{Kty: p.Kty, Curve: p.Curve, KeyOps: p.KeyOps, Attrs: attrChange(p.Attributes), Tags: p.Tags, ReleasePolicy: releasePolicy(p.ReleasePolicy)}
	if p.KeySize != nil {
		cp.Size = *p.KeySize
	}
	if p.PublicExponent != nil {
		cp.PublicExponent = *p.PublicExponent
	}
	v, err := a.deps.Keys.Create(r.Context(), rc.instance, r.PathValue("name"), cp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

func (a *API) importKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.KeyImportParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	if p.Key == nil {
		return fault.New(fault.BadParameter, "BadParameter", "key (the JSON web key to import) is missing")
	}
	k := p.Key
	jwk := keyops.JWK{Kty: k.Kty, KeyOps: k.KeyOps, N: k.N, E: k.E, D: k.D, DP: k.DP, DQ: k.DQ, QI: k.QI, P: k.P, Q: k.Q, K: k.K, Crv: k.Crv, X: k.X, Y: k.Y, KeyHSM: k.KeyHSM}
	v, err := a.deps.Keys.Import(r.Context(), rc.instance, r.PathValue("name"), jwk, k.KeyOps, attrChange(p.Attributes), p.Tags, releasePolicy(p.ReleasePolicy))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v, err := a.deps.Keys.Get(r.Context(), rc.instance, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

func (a *API) updateKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.KeyUpdateParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	v, err := a.deps.Keys.Update(r.Context(), rc.instance, r.PathValue("name"), r.PathValue("version"), p.KeyOps, attrChange(p.Attributes), p.Tags, releasePolicy(p.ReleasePolicy))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

// page cuts a list by maxresults and $skiptoken and returns the next link.
// name gives each item's position key, increasing along the list (a key
// name for lists sorted by name, the zero-padded index for versions, which
// are in creation order); the token is the last key served, base64url.
func page[T any](r *http.Request, items []T, name func(int, T) string) ([]T, *string, error) {
	max, after, err := pageParams(r)
	if err != nil {
		return nil, nil, err
	}
	start := 0
	for after != "" && start < len(items) && name(start, items[start]) <= after {
		start++
	}
	end := min(start+max, len(items))
	out := items[start:end]
	if end >= len(items) {
		return out, nil, nil
	}
	return out, nextLink(r, max, name(end-1, items[end-1])), nil
}

// pageParams reads a list's maxresults (1–25, default 25) and $skiptoken
// (the last item of the page before; "" for the first page).
func pageParams(r *http.Request) (max int, after string, err error) {
	q := r.URL.Query()
	max = 25
	if s := q.Get("maxresults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 25 {
			return 0, "", fault.New(fault.BadParameter, "BadParameter", "maxresults must be between 1 and 25")
		}
		max = n
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return 0, "", fault.New(fault.BadParameter, "BadParameter", "$skiptoken is not valid")
		}
		after = string(b)
	}
	return max, after, nil
}

// nextLink is the link to the page after the one whose last item is last.
func nextLink(r *http.Request, max int, last string) *string {
	next := url.Values{}
	next.Set("api-version", r.URL.Query().Get("api-version"))
	next.Set("maxresults", strconv.Itoa(max))
	next.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(last)))
	link := hsmBase(r) + r.URL.Path + "?" + next.Encode()
	return &link
}

// keyPage reads a page of keys (or deleted keys) as the request's
// maxresults and $skiptoken ask, and returns it with the next page's link.
// The skip token is the storage name of the last key of the page before.
func (a *API) keyPage(r *http.Request, rc *reqCtx, deleted bool) ([]keys.Version, *string, error) {
	max, after, err := pageParams(r)
	if err != nil {
		return nil, nil, err
	}
	items, last, more, err := a.deps.Keys.ListPage(r.Context(), rc.instance, deleted, after, max)
	if err != nil || !more {
		return items, nil, err
	}
	return items, nextLink(r, max, last), nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	items, next, err := a.keyPage(r, rc, false)
	if err != nil {
		return err
	}
	out := wire.KeyList{Value: []wire.KeyItem{}, NextLink: next}
	for _, v := range items {
		out.Value = append(out.Value, wire.KeyItem{Kid: hsmBase(r) + "/keys/" + v.Name, Attributes: a.keyAttributes(rc, v.Attributes), Tags: v.Tags})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) listKeyVersions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := a.deps.Keys.Versions(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	items, next, err := page(r, list, func(i int, _ keys.Version) string { return fmt.Sprintf("%04d", i) })
	if err != nil {
		return err
	}
	out := wire.KeyList{Value: []wire.KeyItem{}, NextLink: next}
	for _, v := range items {
		out.Value = append(out.Value, wire.KeyItem{Kid: kid(r, v.Name, v.Version), Attributes: a.keyAttributes(rc, v.Attributes), Tags: v.Tags})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v, err := a.deps.Keys.Delete(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.deletedBundle(r, rc, v))
	return nil
}

func (a *API) listDeletedKeys(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	items, next, err := a.keyPage(r, rc, true)
	if err != nil {
		return err
	}
	out := wire.DeletedKeyList{Value: []wire.DeletedKeyItem{}, NextLink: next}
	for _, v := range items {
		out.Value = append(out.Value, wire.DeletedKeyItem{
			KeyItem:    wire.KeyItem{Kid: hsmBase(r) + "/keys/" + v.Name, Attributes: a.keyAttributes(rc, v.Attributes), Tags: v.Tags},
			RecoveryID: hsmBase(r) + "/deletedkeys/" + v.Name, DeletedDate: ptr(v.DeletedDate.Unix()), ScheduledPurgeDate: ptr(v.ScheduledPurgeDate.Unix()),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getDeletedKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v, err := a.deps.Keys.GetDeleted(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.deletedBundle(r, rc, v))
	return nil
}

func (a *API) recoverKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v, err := a.deps.Keys.Recover(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

func (a *API) purgeKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := a.deps.Keys.Purge(r.Context(), rc.instance, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) backupKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	blob, err := a.deps.Keys.Backup(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.BackupKeyResult{Value: enc(blob)})
	return nil
}

func (a *API) restoreKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.KeyRestoreParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	blob, err := b64("value", p.Value)
	if err != nil {
		return err
	}
	v, err := a.deps.Keys.Restore(r.Context(), rc.instance, blob)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v, err := a.deps.Keys.Rotate(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.keyBundle(r, rc, v))
	return nil
}

func (a *API) toWirePolicy(r *http.Request, p keys.RotationPolicy) wire.KeyRotationPolicy {
	out := wire.KeyRotationPolicy{ID: hsmBase(r) + "/keys/" + r.PathValue("name") + "/rotationpolicy", LifetimeActions: []wire.LifetimeAction{}}
	for _, la := range p.Actions {
		out.LifetimeActions = append(out.LifetimeActions, wire.LifetimeAction{
			Trigger: wire.LifetimeActionTrigger{TimeAfterCreate: la.TimeAfterCreate, TimeBeforeExpiry: la.TimeBeforeExpiry},
			Action:  wire.LifetimeActionType{Type: la.Type},
		})
	}
	at := &wire.KeyRotationPolicyAttribs{ExpiryTime: p.ExpiryTime}
	if p.Created != 0 {
		at.Created, at.Updated = ptr(p.Created), ptr(p.Updated)
	}
	out.Attributes = at
	return out
}

func (a *API) getRotationPolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	p, err := a.deps.Keys.GetPolicy(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.toWirePolicy(r, p))
	return nil
}

func (a *API) putRotationPolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var body wire.KeyRotationPolicy
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	var p keys.RotationPolicy
	for _, la := range body.LifetimeActions {
		p.Actions = append(p.Actions, keys.LifetimeAction{TimeAfterCreate: la.Trigger.TimeAfterCreate, TimeBeforeExpiry: la.Trigger.TimeBeforeExpiry, Type: la.Action.Type})
	}
	if body.Attributes != nil {
		p.ExpiryTime = body.Attributes.ExpiryTime
	}
	p, err := a.deps.Keys.PutPolicy(r.Context(), rc.instance, r.PathValue("name"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.toWirePolicy(r, p))
	return nil
}

// keyOp serves encrypt, decrypt, wrapkey and unwrapkey.
func (a *API) keyOp(op keys.Op) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		var p wire.KeyOperationsParameters
		if err := decodeJSON(r, &p); err != nil {
			return err
		}
		if p.Alg == "" {
			return fault.New(fault.BadParameter, "BadParameter", "alg is missing")
		}
		info(r).alg = clip(p.Alg, 40)
		value, err := b64("value", p.Value)
		if err != nil {
			return err
		}
		var iv, aad, tag []byte
		for _, f := range []struct {
			name string
			in   string
			out  *[]byte
		}{{"iv", p.IV, &iv}, {"aad", p.AAD, &aad}, {"tag", p.Tag, &tag}} {
			if f.in != "" {
				if *f.out, err = b64(f.name, f.in); err != nil {
					return err
				}
			}
		}
		name, version := r.PathValue("name"), r.PathValue("version")
		var res keys.Result
		ctx, in := r.Context(), rc.instance
		switch op {
		case keys.OpEncrypt:
			res, err = a.deps.Keys.Encrypt(ctx, in, name, version, p.Alg, keyops.EncryptParams{Plaintext: value, IV: iv, AAD: aad})
		case keys.OpDecrypt:
			res, err = a.deps.Keys.Decrypt(ctx, in, name, version, p.Alg, keyops.DecryptParams{Ciphertext: value, IV: iv, AAD: aad, Tag: tag})
		case keys.OpWrapKey:
			res, err = a.deps.Keys.WrapKey(ctx, in, name, version, p.Alg, value)
		case keys.OpUnwrapKey:
			res, err = a.deps.Keys.UnwrapKey(ctx, in, name, version, p.Alg, value)
		}
		if err != nil {
			return err
		}
		out := wire.KeyOperationResult{Kid: kid(r, name, res.Version), Value: enc(res.Value)}
		if res.IV != nil {
			out.IV = enc(res.IV)
		}
		if res.Tag != nil {
			out.Tag = enc(res.Tag)
		}
		if res.AAD != nil {
			out.AAD = enc(res.AAD)
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (a *API) signKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.KeySignParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	if p.Alg == "" {
		return fault.New(fault.BadParameter, "BadParameter", "alg is missing")
	}
	info(r).alg = clip(p.Alg, 40)
	digest, err := b64("value", p.Value)
	if err != nil {
		return err
	}
	res, err := a.deps.Keys.Sign(r.Context(), rc.instance, r.PathValue("name"), r.PathValue("version"), p.Alg, digest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.KeyOperationResult{Kid: kid(r, r.PathValue("name"), res.Version), Value: enc(res.Value)})
	return nil
}

func (a *API) verifyKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.KeyVerifyParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	if p.Alg == "" {
		return fault.New(fault.BadParameter, "BadParameter", "alg is missing")
	}
	info(r).alg = clip(p.Alg, 40)
	digest, err := b64("digest", p.Digest)
	if err != nil {
		return err
	}
	sig, err := b64("value", p.Value)
	if err != nil {
		return err
	}
	ok, err := a.deps.Keys.Verify(r.Context(), rc.instance, r.PathValue("name"), r.PathValue("version"), p.Alg, digest, sig)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.KeyVerifyResult{Value: ok})
	return nil
}
