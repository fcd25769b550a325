package api

import (
	"net/http"

	"tresor/internal/fault"
	"tresor/internal/policy"
	"tresor/internal/wire"
)

// Settings API (spec §5.4).
//
// The service's data-action vocabulary has no action for settings. Tresor
// treats the settings as part of the HSM's access policy: reading them
// needs roleDefinitions/read (every built-in role that may see the policy),
// changing them roleDefinitions/write (the Administrator, the Crypto
// Officer and the Policy Administrator, who may change the policy anyway).

func toSetting(s policy.Setting) wire.Setting {
	return wire.Setting{Name: s.Name, Value: s.Value, Type: s.Type}
}

func (a *API) listSettings(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	all, err := a.deps.Policy.Settings(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	out := wire.SettingsList{Settings: []wire.Setting{}}
	for _, s := range all {
		out.Settings = append(out.Settings, toSetting(s))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getSetting(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s, err := a.deps.Policy.GetSetting(r.Context(), rc.instance, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSetting(s))
	return nil
}

// updateSetting answers PATCH /settings/{name} with body {"value": "…"}.
func (a *API) updateSetting(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var body wire.SettingUpdate
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Value == nil {
		return fault.New(fault.BadParameter, "BadParameter", "value is missing")
	}
	s, err := a.deps.Policy.UpdateSetting(r.Context(), rc.instance, r.PathValue("name"), *body.Value)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSetting(s))
	return nil
}
