package policy

import (
	"context"
	"fmt"
	"strings"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/store"
)

// Setting is an HSM setting (spec §5.4).
type Setting struct {
	Name  string
	Value string
	Type  string // "boolean"
}

// settingDef describes a setting the HSM knows.
type settingDef struct {
	name, typ, def string
}

// settingDefs are the settings an HSM has, with their defaults.
var settingDefs = []settingDef{
	// AllowKeyManagementOperationsThroughARM lets key management go through
	// the control plane too; Tresor keeps it as a setting only.
	{name: "AllowKeyManagementOperationsThroughARM", typ: "boolean", def: "false"},
}

func findSetting(name string) (settingDef, error) {
	for _, d := range settingDefs {
		if strings.EqualFold(d.name, name) {
			return d, nil
		}
	}
	return settingDef{}, fault.New(fault.NotFound, "SettingNotFound", "the managed HSM has no setting named '%s'", name)
}

// Settings returns the instance's settings, each with its value or default.
func (s *Service) Settings(ctx context.Context, in instances.Instance) ([]Setting, error) {
	st, err := s.read(ctx, in.Key)
	if err != nil {
		return nil, err
	}
	out := make([]Setting, 0, len(settingDefs))
	for _, d := range settingDefs {
		v, ok := st.settings[d.name]
		if !ok {
			v = d.def
		}
		out = append(out, Setting{Name: d.name, Value: v, Type: d.typ})
	}
	return out, nil
}

// GetSetting returns one setting by name (any case).
func (s *Service) GetSetting(ctx context.Context, in instances.Instance, name string) (Setting, error) {
	d, err := findSetting(name)
	if err != nil {
		return Setting{}, err
	}
	all, err := s.Settings(ctx, in)
	if err != nil {
		return Setting{}, err
	}
	for _, st := range all {
		if st.Name == d.name {
			return st, nil
		}
	}
	return Setting{}, fmt.Errorf("policy: setting %s missing", d.name)
}

// UpdateSetting sets a setting; a boolean takes "true" or "false" (any case).
func (s *Service) UpdateSetting(ctx context.Context, in instances.Instance, name, value string) (Setting, error) {
	d, err := findSetting(name)
	if err != nil {
		return Setting{}, err
	}
	switch v := strings.ToLower(strings.TrimSpace(value)); {
	case d.typ == "boolean" && (v == "true" || v == "false"):
		value = v
	default:
		return Setting{}, fault.New(fault.BadParameter, "BadParameter", "the setting %s is a %s: its value must be 'true' or 'false', not '%s'", d.name, d.typ, value)
	}
	err = s.update(ctx, in, func(st *snapshot, b *barrier.Barrier) (store.UpdateInstance, error) {
		if cur, ok := st.settings[d.name]; ok && cur == value {
			return store.UpdateInstance{}, nil
		}
		v, err := instances.SealJSON(b, BucketSettings, d.name, value)
		if err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Puts: []store.Value{v}}, nil
	})
	if err != nil {
		return Setting{}, err
	}
	return Setting{Name: d.name, Value: value, Type: d.typ}, nil
}
