// Package server is Tresor's composition root: it turns a [Config] into the
// seal, the store, the services and the HTTP endpoints of one region, and
// runs them. Tests start whole servers through the same code.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"tresor/internal/api"
	"tresor/internal/atomicfile"
	"tresor/internal/audit"
	"tresor/internal/backup"
	"tresor/internal/barrier"
	"tresor/internal/crypto/keyops"
	"tresor/internal/identity"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/policy"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

// Server is a running region.
type Server struct {
	cfg       Config
	log       *slog.Logger
	ln        net.Listener
	http      *http.Server
	st        store.Store
	seal      barrier.Seal
	Instances *instances.Service
	Policy    *policy.Service
	Keys      *keys.Service
	Backups   *backup.Service
	audit     *audit.Log

	// Endpoint is the region endpoint URL; CAFile the dev CA (if any).
	Endpoint string
	CAFile   string
	TenantID string
	// AuditLog is the audit log file.
	AuditLog string
	// BackupDir is the dev backup directory ({DataDir}/backups; "" unless Dev).
	BackupDir string
	// Bootstrap holds the first administrator's credentials when this
	// start created them (nil on later starts).
	Bootstrap *Credentials

	closeOnce sync.Once
	closeErr  error
}

// Credentials of a principal.
type Credentials struct {
	ObjectID, ClientID, ClientSecret string
}

// Region value keys.
const (
	keyTenant       = "tenant"
	keySubscription = "subscription"
	keyRegionRoot   = "region-root"
	keySigningKey   = "signing-key"
)

// New prepares the region: data directory, seal, store, identity, services,
// and the listener. It does not serve until [Server.Run].
func New(ctx context.Context, cfg Config, logw io.Writer) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Known-answer tests of the key algorithms: refuse to serve if they fail.
	if err := keyops.SelfTest(); err != nil {
		return nil, fmt.Errorf("cryptographic self test failed: %w", err)
	}
	if logw == nil {
		logw = io.Discard
	}
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(logw, nil))}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs // dev.env and the printed paths work from anywhere
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if certFile == "" {
		if s.CAFile, certFile, keyFile, err = devTLS(cfg.DataDir, cfg.DNSSuffix); err != nil {
			return nil, err
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	sealFile := cfg.SealKeyFile
	if sealFile == "" {
		sealFile = filepath.Join(cfg.DataDir, "seal.key")
	}
	if s.seal, err = barrier.OpenFileSeal(sealFile, true); err != nil {
		return nil, err
	}
	if s.st, err = store.OpenBolt(filepath.Join(cfg.DataDir, "tresor.db")); err != nil {
		return nil, err
	}
	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	port := s.ln.Addr().(*net.TCPAddr).Port
	s.Endpoint = strings.TrimSuffix(cfg.PublicURL, "/")
	if s.Endpoint == "" {
		s.Endpoint = "https://localhost:" + strconv.Itoa(port)
	}

	reg, err := s.initRegion(ctx)
	if err != nil {
		return nil, err
	}
	s.TenantID = reg.tenant
	hsmResource := cfg.Identity.Resource
	if hsmResource == "" {
		hsmResource = "https://" + cfg.DNSSuffix
		if port != 443 {
			hsmResource += ":" + strconv.Itoa(port)
		}
	}
	issuer, err := identity.NewIssuer(identity.IssuerConfig{
		Authority: s.Endpoint, TenantID: reg.tenant, Lifetime: cfg.Identity.TokenLifetime.Duration,
	}, reg.signingKey)
	if err != nil {
		return nil, err
	}
	apiCfg := api.Config{
		Region: cfg.Region, DNSSuffix: cfg.DNSSuffix, Port: port, TenantID: reg.tenant,
		Subscription: reg.subscription, Authority: s.Endpoint, HSMResource: hsmResource,
		ChallengeAuth: cfg.Identity.Authorization, RegionAdmins: cfg.Identity.RegionAdmins,
		ExternalPrincipals: len(cfg.Identity.TrustedIssuers) > 0,
		ExtraMgmtAudiences: cfg.Identity.ExtraAudiences, ExtraHSMAudiences: cfg.Identity.ExtraAudiences,
		Logger: s.log,
	}
	var trusted []identity.TrustedIssuer
	for _, t := range cfg.Identity.TrustedIssuers {
		trusted = append(trusted, identity.TrustedIssuer{Issuer: t.Issuer, DiscoveryURL: t.DiscoveryURL,
			JWKSFile: t.JWKSFile, Audiences: t.Audiences, PrincipalClaim: t.PrincipalClaim})
	}
	mgmtV, err := identity.NewValidator(identity.ValidatorConfig{Local: issuer, LocalAudiences: apiCfg.MgmtAudiences(), Trusted: trusted})
	if err != nil {
		return nil, err
	}
	hsmV, err := identity.NewValidator(identity.ValidatorConfig{Local: issuer, LocalAudiences: apiCfg.HSMAudiences(), Trusted: trusted})
	if err != nil {
		return nil, err
	}
	s.Instances = instances.New(s.st, s.seal, reg.barrier, instances.Config{Region: cfg.Region, TenantID: reg.tenant, Now: cfg.Clock})
	s.Policy = policy.New(s.Instances, s.st)
	s.Keys = keys.New(s.Instances, s.st, cfg.Clock)
	dir := &principals{st: s.st, now: time.Now}
	if err := s.bootstrapAdmin(ctx, dir); err != nil {
		return nil, err
	}
	backupDirs := append([]string(nil), cfg.BackupDirs...)
	if cfg.Dev {
		dir := filepath.Join(cfg.DataDir, "backups")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("backup dir: %w", err)
		}
		backupDirs = append(backupDirs, dir)
		s.BackupDir = dir
	}
	s.Backups, err = backup.New(backup.Config{Store: s.st, Instances: s.Instances, Keyring: s.Instances, Keys: s.Keys,
		FileRoots: backupDirs, Logger: s.log, Now: cfg.Clock})
	if err != nil {
		return nil, err
	}
	// No job survives its process: interrupted jobs end as Failed and
	// interrupted restores leave their instance as it was.
	if err := s.Backups.Recover(ctx); err != nil {
		return nil, err
	}
	s.AuditLog = cfg.Audit.Path
	if s.AuditLog == "" {
		s.AuditLog = filepath.Join(cfg.DataDir, "audit", "audit.log")
	}
	if abs, err := filepath.Abs(s.AuditLog); err == nil {
		s.AuditLog = abs
	}
	if s.audit, err = audit.Open(s.AuditLog, audit.Options{MaxSize: int64(cfg.Audit.MaxSizeMB) << 20, Logger: s.log}); err != nil {
		return nil, err
	}
	apiCfg.AuditFailOpen = !cfg.Audit.FailClosed
	h, err := api.New(apiCfg, api.Deps{Instances: s.Instances, Policy: s.Policy, Keys: s.Keys, Backups: s.Backups, Issuer: issuer,
		MgmtValidator: mgmtV, HSMValidator: hsmV, Principals: dir, Audit: s.audit})
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg.Dev {
		if err := s.writeDevEnv(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

type regionState struct {
	tenant, subscription string
	barrier              *barrier.Barrier
	signingKey           *identity.SigningKey
}

// initRegion reads the region's identity and keys, creating them on first start.
func (s *Server) initRegion(ctx context.Context) (regionState, error) {
	var rs regionState
	get := func(key string) ([]byte, error) {
		var v []byte
		err := s.st.View(ctx, func(r store.Reader) error {
			var err error
			v, err = r.RegionValue(key)
			return err
		})
		return v, err
	}
	// putOnce stores v unless a value exists, and returns the stored one.
	putOnce := func(key string, mk func() ([]byte, error)) ([]byte, error) {
		v, err := get(key)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if v, err = mk(); err != nil {
			return nil, err
		}
		err = s.st.Apply(ctx, store.PutRegionValue{Key: key, Value: v, IfAbsent: true})
		if err != nil && !errors.Is(err, store.ErrExists) {
			return nil, err
		}
		return get(key)
	}
	tenant, err := putOnce(keyTenant, func() ([]byte, error) { return []byte(uuid.New()), nil })
	if err != nil {
		return rs, err
	}
	sub, err := putOnce(keySubscription, func() ([]byte, error) { return []byte(uuid.New()), nil })
	if err != nil {
		return rs, err
	}
	wrapped, err := putOnce(keyRegionRoot, func() ([]byte, error) {
		root, err := barrier.NewRootKey(nil)
		if err != nil {
			return nil, err
		}
		return barrier.WrapRootKey(s.seal, root, "region")
	})
	if err != nil {
		return rs, err
	}
	root, err := barrier.UnwrapRootKey(s.seal, wrapped, "region")
	if err != nil {
		return rs, fmt.Errorf("region root key does not open with this seal key: %w", err)
	}
	rb, err := barrier.New(root, barrier.Storage, "region")
	if err != nil {
		return rs, err
	}
	sealedKey, err := putOnce(keySigningKey, func() ([]byte, error) {
		k, err := identity.GenerateSigningKey()
		if err != nil {
			return nil, err
		}
		der, err := k.MarshalPKCS8()
		if err != nil {
			return nil, err
		}
		return rb.Seal("region/"+keySigningKey, der)
	})
	if err != nil {
		return rs, err
	}
	der, err := rb.Open("region/"+keySigningKey, sealedKey)
	if err != nil {
		return rs, fmt.Errorf("token signing key: %w", err)
	}
	sk, err := identity.ParseSigningKey(der)
	if err != nil {
		return rs, err
	}
	return regionState{tenant: string(tenant), subscription: string(sub), barrier: rb, signingKey: sk}, nil
}

// bootstrapAdmin creates the first region administrator when the region
// has no principal at all.
func (s *Server) bootstrapAdmin(ctx context.Context, dir *principals) error {
	ps, err := dir.List(ctx)
	if err != nil || len(ps) > 0 {
		return err
	}
	p, secret, err := dir.Create(ctx, "bootstrap administrator", true)
	if err != nil {
		return err
	}
	s.Bootstrap = &Credentials{ObjectID: p.ObjectID, ClientID: p.ClientID, ClientSecret: secret}
	return nil
}

// DevEnvFile is the file, in the data directory, where --dev writes the
// bootstrap credentials as export lines.
const DevEnvFile = "dev.env"

func (s *Server) writeDevEnv() error {
	if s.Bootstrap == nil {
		return nil // written on the first start
	}
	var b strings.Builder
	fmt.Fprintf(&b, "export TRESOR_SERVER=%s\n", s.Endpoint)
	fmt.Fprintf(&b, "export TRESOR_CA_FILE=%s\n", s.CAFile)
	fmt.Fprintf(&b, "export TRESOR_TENANT_ID=%s\n", s.TenantID)
	fmt.Fprintf(&b, "export TRESOR_CLIENT_ID=%s\n", s.Bootstrap.ClientID)
	fmt.Fprintf(&b, "export TRESOR_CLIENT_SECRET=%s\n", s.Bootstrap.ClientSecret)
	return atomicfile.Write(filepath.Join(s.cfg.DataDir, DevEnvFile), []byte(b.String()), 0o600)
}

// Store is the region's store (for tools and tests that need to see or
// change state beneath the services).
func (s *Server) Store() store.Store { return s.st }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully: in-flight requests
// finish (up to 30 s) before it returns.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.ServeTLS(s.ln, "", "") }()
	purgeDone := make(chan struct{})
	pctx, stopPurge := context.WithCancel(ctx)
	go func() {
		defer close(purgeDone)
		s.purgeLoop(pctx)
	}()
	defer func() {
		stopPurge()
		<-purgeDone
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.http.Shutdown(sctx)
	<-errc
	return err
}

func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.RunDue(ctx)
		}
	}
}

// RunDue carries out what is due: purges of instances and keys past their
// scheduled purge date, and key rotations asked for by rotation policies.
// The server runs it every purge interval; tests call it with a fake clock.
func (s *Server) RunDue(ctx context.Context) {
	n, err := s.Instances.PurgeExpired(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("automatic purge", "err", err)
	}
	if n > 0 {
		s.log.Info("purged instances past their scheduled purge date", "count", n)
	}
	list, err := s.Instances.List(ctx, "", "")
	if err != nil {
		s.log.Error("list instances", "err", err)
		return
	}
	for _, in := range list {
		if in.ActivationStatus != instances.Active {
			continue
		}
		rotated, purged, err := s.Keys.RunDue(ctx, in)
		if err != nil && ctx.Err() == nil {
			s.log.Error("key lifecycle", "instance", in.Key, "err", err)
		}
		if rotated+purged > 0 {
			s.log.Info("key lifecycle", "instance", in.Key, "rotated", rotated, "purged", purged)
		}
	}
}

// Close releases the listener, the backup jobs, the audit log (naming its
// last seq and hash in the server log) and the store.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.Backups != nil {
			s.Backups.Close()
		}
		if s.audit != nil {
			if err := s.audit.Close(); err != nil {
				s.log.Error("close the audit log", "err", err)
			}
		}
		if s.st != nil {
			s.closeErr = s.st.Close()
		}
	})
	return s.closeErr
}
