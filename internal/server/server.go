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
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tresor/internal/api"
	"tresor/internal/atomicfile"
	"tresor/internal/audit"
	"tresor/internal/backup"
	"tresor/internal/barrier"
	"tresor/internal/connlimit"
	"tresor/internal/crypto/keyops"
	"tresor/internal/identity"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/metrics"
	"tresor/internal/policy"
	"tresor/internal/store"
	"tresor/internal/throttle"
	"tresor/internal/uuid"
)

// Server is a running region.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ln    net.Listener
	conns *connlimit.Listener // wraps ln
	http  *http.Server
	st    store.Store
	bolt  *store.Bolt // the local state beneath st (st itself on a single node)
	seal  barrier.Seal
	// rootSeal wraps the root keys in the store: the node's seal on a
	// single node, the cluster's seal on a cluster node (cluster.go).
	rootSeal  barrier.Seal
	cluster   *clusterNode // nil on a single node
	closeSeal func() error // nil for the file seal
	Instances *instances.Service
	Policy    *policy.Service
	Keys      *keys.Service
	Backups   *backup.Service
	audit     *audit.Log
	api       *api.API
	level     slog.LevelVar // the log's level (logLevel; reload.go)

	// Token validation: the region's issuer, the audiences of its tokens
	// on each plane, and the validators, which a reload replaces.
	issuer     *identity.Issuer
	mgmtAuds   []string
	hsmAuds    []string
	validators atomic.Pointer[validators]
	// reloaded wakes the loop that fetches the keys of trusted issuers
	// after a reload brought new validators.
	reloaded chan struct{}
	reloadMu sync.Mutex
	running  Config // the configuration in effect, guarded by reloadMu

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

	metrics   *metrics.Metrics
	adminLn   net.Listener // nil without Config.AdminListen
	adminHTTP *http.Server
	ready     atomic.Bool // New has opened everything
	closing   atomic.Bool // Close has begun

	closeOnce sync.Once
	closeErr  error
}

// Credentials of a principal.
type Credentials struct {
	ObjectID, ClientID, ClientSecret string
}

// handshakeLogInterval is how often at most a failed TLS handshake is
// logged (with the count of those left out).
const handshakeLogInterval = 10 * time.Second

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
	s := &Server{cfg: cfg, running: cfg, reloaded: make(chan struct{}, 1), metrics: metrics.New()}
	lvl, _ := cfg.logLevel() // checked by Validate
	s.level.Set(lvl)
	s.log = newLogger(cfg, logw, &s.level)
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if cfg.AdminListen != "" {
		// First, so that /readyz says "starting" while the rest opens.
		if err := s.startAdmin(cfg.AdminListen); err != nil {
			return nil, err
		}
	}
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
	dbFile := filepath.Join(cfg.DataDir, "tresor.db")
	if s.seal, s.closeSeal, err = openSeal(cfg, dbFile); err != nil {
		return nil, err
	}
	st, err := store.OpenBolt(dbFile)
	if err != nil {
		return nil, openStoreError(cfg.DataDir, err)
	}
	s.st, s.bolt, s.rootSeal = st, st, s.seal
	s.metrics.StoreSize(storeSize(dbFile))
	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.conns = connlimit.New(s.ln, connlimit.Config{
		Max: cfg.MaxConnections, PerClient: cfg.MaxConnectionsPerClient,
		Reserve: connlimit.DefaultReserve(cfg.MaxConnections), OnRefuse: s.refused(),
	})
	port := s.ln.Addr().(*net.TCPAddr).Port
	s.Endpoint = strings.TrimSuffix(cfg.PublicURL, "/")
	if s.Endpoint == "" {
		s.Endpoint = "https://localhost:" + strconv.Itoa(port)
	}

	if cfg.Cluster.Enabled() {
		if s.cluster, err = openCluster(ctx, cfg, s.seal, st, s.Endpoint, s.log); err != nil {
			return nil, err
		}
		s.st, s.rootSeal = s.cluster.raft, s.cluster.seal
	}
	reg, err := s.initRegion(ctx)
	if err != nil {
		return nil, err
	}
	if s.cluster != nil {
		if err := s.cluster.opened(ctx, reg.barrier); err != nil {
			return nil, err
		}
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
		Region: cfg.Region, RegionDisplayName: cfg.DisplayName(), DNSSuffix: cfg.DNSSuffix, Port: port, TenantID: reg.tenant,
		Subscription: reg.subscription, Authority: s.Endpoint, HSMResource: hsmResource,
		ChallengeAuth: cfg.Identity.Authorization, RegionAdmins: cfg.Identity.RegionAdmins,
		ExternalPrincipals: len(cfg.Identity.TrustedIssuers) > 0,
		ExtraMgmtAudiences: cfg.Identity.ExtraARMAudiences, ExtraHSMAudiences: cfg.Identity.ExtraHSMAudiences,
		Logger: s.log, Metrics: s.metrics, RequestBodyTimeout: cfg.RequestBodyTimeout.Duration,
		TokenRatePerAddress: api.Rate(cfg.TokenRatePerAddress), TokenRatePerClient: api.Rate(cfg.TokenRatePerClient),
		PrincipalRate: api.Rate(cfg.PrincipalRate),
	}
	apiCfg.IssuerTenants = map[string][]string{}
	for _, t := range cfg.Identity.TrustedIssuers {
		apiCfg.IssuerTenants[t.Issuer] = t.TenantIDs
	}
	s.issuer, s.mgmtAuds, s.hsmAuds = issuer, apiCfg.MgmtAudiences(), apiCfg.HSMAudiences()
	v, err := s.newValidators(cfg.Identity.TrustedIssuers)
	if err != nil {
		return nil, err
	}
	s.validators.Store(v)
	if cfg.StrictIssuers {
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := v.fetchKeys(fctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("strict issuers: %w", err)
		}
	}
	// Control-plane rights follow the local RBAC state, which the policy
	// service (made just below, on the instances service) reads.
	admins := func(ctx context.Context, in instances.Instance) ([]string, error) {
		return s.Policy.Administrators(ctx, in)
	}
	s.Instances = instances.New(s.st, s.rootSeal, reg.barrier, instances.Config{Region: cfg.Region, TenantID: reg.tenant, Now: cfg.Clock, Administrators: admins})
	s.Policy = policy.New(s.Instances, s.st)
	s.Keys = keys.New(s.Instances, s.st, cfg.Clock, keys.MaxKeys(cfg.MaxKeysPerHsm))
	dir := &principals{st: s.st, mac: reg.records, now: time.Now}
	if reg.protectedRoot != nil {
		if err := dir.migrate(ctx, reg.protectedRoot, s.log); err != nil {
			return nil, err
		}
	}
	if err := dir.verifyAll(ctx); err != nil {
		return nil, err
	}
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
		FileRoots: backupDirs, Region: reg.barrier, Logger: s.log, Now: cfg.Clock, OnJobEnd: s.metrics.JobEnded, Node: cfg.Cluster.NodeID})
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
	if s.audit, err = audit.Open(s.AuditLog, audit.Options{MaxSize: int64(cfg.Audit.MaxSizeMB) << 20, SyncInterval: cfg.Audit.SyncInterval.Duration, Logger: s.log}); err != nil {
		return nil, err
	}
	apiCfg.AuditFailOpen = !cfg.Audit.FailClosed
	s.api, err = api.New(apiCfg, api.Deps{Instances: s.Instances, Policy: s.Policy, Keys: s.Keys, Backups: s.Backups, Issuer: issuer,
		MgmtValidator: v.mgmt, HSMValidator: v.hsm, Principals: dir, Audit: s.audit, Cluster: s.apiCluster()})
	if err != nil {
		return nil, err
	}
	handler, err := s.withConsole(cfg) // the web console at /console (console.go)
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig(pair),
		ReadHeaderTimeout: 10 * time.Second, // also bounds the TLS handshake
		// The body's own deadline is set per request by the API
		// (RequestBodyTimeout); WriteTimeout bounds a request from its
		// headers to the end of its answer.
		WriteTimeout: cfg.ResponseTimeout.Duration,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     newHandshakeLog(s.log, handshakeLogInterval, time.Now),
	}
	if cfg.Dev {
		if err := s.writeDevEnv(); err != nil {
			return nil, err
		}
	}
	s.ready.Store(true)
	return s, nil
}

// openStoreError says in one line what keeps the store file from opening
// and how to fix it.
func openStoreError(dataDir string, err error) error {
	var oe *store.OpenError
	if !errors.As(err, &oe) {
		return err
	}
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("data directory %s is in use by another tresor server (lock held on %s): stop that server, or give this one another --data-dir", dataDir, oe.Path)
	case errors.Is(err, store.ErrCorrupt):
		return fmt.Errorf("the store file %s is damaged (%v): restore it from a copy, or move it away to start an empty region", oe.Path, oe.Err)
	case errors.Is(err, store.ErrForeign):
		return fmt.Errorf("%s is not a Tresor store (%v; another program's data?): give tresor a data directory of its own", oe.Path, oe.Err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot open the store file %s for writing (permission denied): the data directory and its files must be writable by the user that runs tresor", oe.Path)
	}
	return err
}

type regionState struct {
	tenant, subscription string
	barrier              *barrier.Barrier
	signingKey           *identity.SigningKey
	// records authenticates the principal records.
	records *barrier.RecordMAC
	// protectedRoot is set when the region was written by a version
	// without record MACs: the root wrapped as protected, stored once the
	// records have their MACs.
	protectedRoot []byte
}

// The names the region root is wrapped under: a region whose root is
// wrapped under rootNameProtected has a MAC on every principal record.
const (
	rootNameLegacy    = "region"
	rootNameProtected = "region/records-v2"
)

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
	tenant, err := putOnce(keyTenant, func() ([]byte, error) {
		if t := s.cfg.Identity.TenantID; t != "" {
			return []byte(t), nil
		}
		return []byte(uuid.New()), nil
	})
	if err != nil {
		return rs, err
	}
	// A configured tenant wins over the one a previous start stored.
	if t := s.cfg.Identity.TenantID; t != "" && string(tenant) != t {
		if err := s.st.Apply(ctx, store.PutRegionValue{Key: keyTenant, Value: []byte(t)}); err != nil {
			return rs, err
		}
		s.log.Info("region tenant changed by identity.tenantId; existing HSMs keep their tenant", "from", string(tenant), "to", t)
		tenant = []byte(t)
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
		return barrier.WrapRootKey(s.rootSeal, root, rootNameProtected)
	})
	if err != nil {
		return rs, err
	}
	// The root's wrap says whether the region's records carry MACs: only
	// the seal can make either wrap, so no edit of the database makes a
	// protected region look like one written by an earlier version.
	root, err := barrier.UnwrapRootKey(s.rootSeal, wrapped, rootNameProtected)
	if err != nil {
		if root, err = barrier.UnwrapRootKey(s.rootSeal, wrapped, rootNameLegacy); err != nil {
			return rs, fmt.Errorf("region root key does not open with %s: %w", sealName(s.cfg), err)
		}
		if rs.protectedRoot, err = barrier.WrapRootKey(s.rootSeal, root, rootNameProtected); err != nil {
			return rs, err
		}
	}
	if rs.records, err = barrier.NewRecordMAC(root, "region"); err != nil {
		return rs, err
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
	rs.tenant, rs.subscription, rs.barrier, rs.signingKey = string(tenant), string(sub), rb, sk
	return rs, nil
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

// Connections returns how many connections are open (accepted within the
// connection caps and not yet closed).
func (s *Server) Connections() int { return s.conns.Open() }

// refused returns the listener's OnRefuse: a warning per refused
// connection, at most one a second (with the count of those not logged).
func (s *Server) refused() func(netip.Prefix, string) {
	var mu sync.Mutex
	b := throttle.NewBucket(1, 5)
	skipped := 0
	return func(client netip.Prefix, why string) {
		mu.Lock()
		ok, _ := b.Take(time.Now())
		n := skipped
		if ok {
			skipped = 0
		} else {
			skipped++
		}
		mu.Unlock()
		if ok {
			s.log.Warn("connection refused at a connection cap", "client", client.String(), "cap", why,
				"maxConnections", s.cfg.MaxConnections, "maxConnectionsPerClient", s.cfg.MaxConnectionsPerClient, "notLogged", n)
		}
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully: in-flight requests
// finish (up to 30 s) before it returns.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.ServeTLS(s.conns, "", "") }()
	purgeDone := make(chan struct{})
	pctx, stopPurge := context.WithCancel(ctx)
	go func() {
		defer close(purgeDone)
		s.whileLeader(pctx, s.purgeLoop)
	}()
	// Scheduled backups have their own timer (the next run of each
	// policy), not the purge interval's tick.
	policiesDone := make(chan struct{})
	go func() {
		defer close(policiesDone)
		s.whileLeader(pctx, s.Backups.RunPolicies)
	}()
	issuersDone := make(chan struct{})
	go func() {
		defer close(issuersDone)
		s.fetchIssuerKeys(pctx)
	}()
	defer func() {
		stopPurge()
		<-purgeDone
		<-policiesDone
		<-issuersDone
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
		s.closing.Store(true)
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
		if s.cluster != nil {
			if err := s.cluster.close(); err != nil {
				s.log.Error("close the cluster node", "err", err)
			}
		}
		if s.bolt != nil {
			s.closeErr = s.bolt.Close()
		}
		if s.closeSeal != nil {
			if err := s.closeSeal(); err != nil {
				s.log.Error("close the pkcs11 seal", "err", err)
			}
		}
		// Last: /readyz answered 503 while the rest closed.
		if s.adminHTTP != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.adminHTTP.Shutdown(sctx)
			cancel()
		}
	})
	return s.closeErr
}
