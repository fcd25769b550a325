package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"tresor/internal/api"
)

// ErrNoConfigSource is returned by [Server.Reload] when the server was
// started without a way to read its configuration again (Config.Load;
// `tresor server` without --config).
var ErrNoConfigSource = errors.New("config reload: the server was started without a config file (--config), so there is nothing to reload")

// reloadable are the config keys that [Server.Reload] applies; a change of
// any other key needs a restart. A key names itself and everything below it.
var reloadable = []string{
	"identity.trustedIssuers", "identity.regionAdmins",
	"tokenRatePerAddress", "tokenRatePerClient", "principalRate",
	"logLevel",
}

// reloadFetchTimeout bounds how long a reload waits for the keys of the
// trusted issuers it brings.
const reloadFetchTimeout = 30 * time.Second

// Reload reads the configuration again (Config.Load), validates it and
// applies what can change while the server runs: the trusted issuers
// (identity.trustedIssuers), the external region administrators
// (identity.regionAdmins), the rate limits (tokenRatePerAddress,
// tokenRatePerClient, principalRate) and the log level (logLevel). Other
// keys that changed are named in the log as needing a restart and are not
// applied. A configuration that does not load or validate is refused as a
// whole: the running one stays, and the reason is logged and returned.
//
// The new trusted issuers' keys are fetched before they are applied; with
// strictIssuers a failed fetch refuses the reload, without it the reload
// is applied and the fetch retried as at start. Requests see the old
// configuration or the new one, never a mix. `tresor server` calls Reload
// on SIGHUP.
func (s *Server) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload(ctx)
	if err != nil {
		s.log.Error("config reload refused; the running configuration stays", "err", err)
	}
	return err
}

func (s *Server) reload(ctx context.Context) error {
	if s.cfg.Load == nil {
		return ErrNoConfigSource
	}
	next, err := s.cfg.Load()
	if err != nil {
		return fmt.Errorf("config reload: %w", err)
	}
	if err := next.Validate(); err != nil {
		return fmt.Errorf("config reload: %w", err)
	}
	cur := s.running
	applied, restart, err := configChanges(cur, next)
	if err != nil {
		return fmt.Errorf("config reload: %w", err)
	}
	lvl, _ := next.logLevel() // checked by Validate
	v := s.validators.Load()
	issuersChanged := slices.Contains(applied, "identity.trustedIssuers")
	if issuersChanged {
		if v, err = s.newValidators(next.Identity.TrustedIssuers); err != nil {
			return fmt.Errorf("config reload: %w", err)
		}
		fctx, cancel := context.WithTimeout(ctx, reloadFetchTimeout)
		err := v.fetchKeys(fctx)
		cancel()
		if err != nil && cur.StrictIssuers {
			return fmt.Errorf("config reload: strict issuers: %w", err)
		}
	}

	// Apply: the API's live state in one swap, then the level.
	live := api.Live{MgmtValidator: v.mgmt, HSMValidator: v.hsm, RegionAdmins: next.Identity.RegionAdmins,
		ExternalPrincipals: len(next.Identity.TrustedIssuers) > 0, IssuerTenants: map[string][]string{},
		TokenRatePerAddress: api.Rate(next.TokenRatePerAddress), TokenRatePerClient: api.Rate(next.TokenRatePerClient),
		PrincipalRate: api.Rate(next.PrincipalRate)}
	for _, t := range next.Identity.TrustedIssuers {
		live.IssuerTenants[t.Issuer] = t.TenantIDs
	}
	s.api.Reload(live)
	s.validators.Store(v)
	if issuersChanged {
		select {
		case s.reloaded <- struct{}{}:
		default:
		}
	}
	s.level.Set(lvl)
	cur.Identity.TrustedIssuers, cur.Identity.RegionAdmins = next.Identity.TrustedIssuers, next.Identity.RegionAdmins
	cur.TokenRatePerAddress, cur.TokenRatePerClient, cur.PrincipalRate = next.TokenRatePerAddress, next.TokenRatePerClient, next.PrincipalRate
	cur.LogLevel = next.LogLevel
	s.running = cur
	s.log.Info("config reloaded", "applied", keyList(applied), "needsRestart", keyList(restart))
	return nil
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ",")
}

// configChanges compares two configurations by their config keys (the
// JSON names, nested ones joined by dots) and returns the keys that
// changed, split into those a reload applies and those that need a
// restart, each sorted.
func configChanges(cur, next Config) (applied, restart []string, err error) {
	a, err := flatConfig(cur)
	if err != nil {
		return nil, nil, err
	}
	b, err := flatConfig(next)
	if err != nil {
		return nil, nil, err
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	seen := map[string]bool{}
	for k := range keys {
		if reflect.DeepEqual(a[k], b[k]) {
			continue
		}
		top := k
		if r := reloadableKey(k); r != "" {
			top = r
		}
		if seen[top] {
			continue
		}
		seen[top] = true
		if reloadableKey(k) != "" {
			applied = append(applied, top)
		} else {
			restart = append(restart, top)
		}
	}
	slices.Sort(applied)
	slices.Sort(restart)
	return applied, restart, nil
}

// reloadableKey returns the entry of reloadable that key is or is below,
// or "".
func reloadableKey(key string) string {
	for _, r := range reloadable {
		if key == r || strings.HasPrefix(key, r+".") {
			return r
		}
	}
	return ""
}

// flatConfig is c's JSON form as dotted keys to values; arrays are values.
func flatConfig(c Config) (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", m)
	return out, nil
}

// reloadOnHangup calls s.Reload on every SIGHUP until the returned stop is
// called or ctx ends.
func reloadOnHangup(ctx context.Context, s *Server) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-hup:
				_ = s.Reload(ctx) // logged
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-exited
	}
}
