package server

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Command returns the `tresor server` command.
func Command() *cobra.Command {
	cfg := DefaultConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Tresor region server",
		Long: `Run a Tresor region: the region endpoint (control plane and identity) and the
HSM endpoints https://{name}.{dns-suffix}:{port}.

With --dev it needs nothing else: it creates the data directory, a development
CA and TLS certificate, a file seal, the store and a bootstrap administrator,
and writes the credentials as export lines to {data-dir}/dev.env.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flagCfg := cfg
			// load reads the file with the flags over it; at start and on
			// every reload (SIGHUP).
			load := func() (Config, error) {
				c := flagCfg
				if configFile != "" {
					c = DefaultConfig()
					if err := LoadConfigFile(configFile, &c); err != nil {
						return Config{}, err
					}
					// Flags given on the command line win over the file.
					overlayFlags(cmd, &c, flagCfg)
				}
				if c.Cluster.JoinToken == "" {
					// Out of argv, where other users of the host see it.
					c.Cluster.JoinToken = os.Getenv("TRESOR_JOIN_TOKEN")
				}
				if c.DataDir == "" && c.Dev {
					c.DataDir = filepath.Join(".tresor-dev")
				}
				return c, nil
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			if configFile != "" {
				cfg.Load = load
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			s, err := New(ctx, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer s.Close()
			defer reloadOnHangup(ctx, s)()
			fmt.Fprintf(out, "Tresor region %q listening on %s\n", cfg.Region, s.Addr())
			fmt.Fprintf(out, "  region endpoint: %s\n", s.Endpoint)
			fmt.Fprintf(out, "  HSM endpoints:   https://{name}.%s:%d\n", cfg.DNSSuffix, portOf(s.Addr()))
			if s.CAFile != "" {
				fmt.Fprintf(out, "  CA certificate:  %s\n", s.CAFile)
			}
			if a := s.AdminAddr(); a != "" {
				fmt.Fprintf(out, "  admin (http):    http://%s (/metrics, /healthz, /readyz)\n", a)
			}
			if s.AuditLog != "" {
				fmt.Fprintf(out, "  audit log:       %s (check it with tresor audit verify)\n", s.AuditLog)
			}
			if s.BackupDir != "" {
				fmt.Fprintf(out, "  backups:         file://%s (a file:// container for tresor backup start)\n", s.BackupDir)
			}
			fmt.Fprintf(out, "  tenant:          %s\n", s.TenantID)
			if b := s.Bootstrap; b != nil {
				fmt.Fprintf(out, "\nBootstrap administrator (shown once):\n  object id:     %s\n  client id:     %s\n  client secret: %s\n", b.ObjectID, b.ClientID, b.ClientSecret)
			}
			if cfg.Dev {
				abs, _ := filepath.Abs(filepath.Join(cfg.DataDir, DevEnvFile))
				if _, err := os.Stat(abs); err == nil {
					fmt.Fprintf(out, "\nTo use the CLI: source %s\n", abs)
				}
			}
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "JSON config file with the same keys as the flags (dataDir, listen, …); SIGHUP reloads it (trusted issuers, region admins, rate limits, logLevel)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "data directory (default .tresor-dev with --dev)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region (location) name")
	f.StringVar(&cfg.RegionDisplayName, "region-display-name", "", "the region's display name (default: Azure's for an Azure region's name, else the name)")
	f.StringVar(&cfg.DNSSuffix, "dns-suffix", cfg.DNSSuffix, "DNS suffix of HSM endpoints")
	f.StringVar(&cfg.PublicURL, "public-url", "", "advertised region endpoint (default https://localhost:{port})")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&cfg.Dev, "dev", false, "development mode: create CA, certificate, seal and administrator as needed")
	f.StringVar(&cfg.SealKeyFile, "seal-key-file", "", "file seal key (default {data-dir}/seal.key)")
	f.StringVar(&cfg.Seal.Type, "seal-type", "", `seal of the region's root keys: "file" (default) or "pkcs11" (needs a build with -tags pkcs11)`)
	f.StringVar(&cfg.Seal.Library, "seal-library", "", "pkcs11 seal: the token's PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)")
	f.StringVar(&cfg.Seal.TokenLabel, "seal-token-label", "", "pkcs11 seal: the token's label")
	f.StringVar(&cfg.Seal.PINFile, "seal-pin-file", "", "pkcs11 seal: file holding the user PIN (mode 0600)")
	f.StringVar(&cfg.Seal.KeyLabel, "seal-key-label", "", "pkcs11 seal: label of the AES-256 seal key in the token")
	f.DurationVar(&cfg.PurgeInterval.Duration, "purge-interval", cfg.PurgeInterval.Duration, "how often expired soft-deleted instances are purged")
	f.StringVar(&cfg.Identity.TenantID, "tenant-id", "", "the region's tenant id (default: the one generated on the first start)")
	f.StringVar(&cfg.Identity.Authorization, "challenge-authorization", "", "authorization URL in the HSM challenge (default {endpoint}/{tenant})")
	f.StringVar(&cfg.Identity.Resource, "challenge-resource", "", "resource in the HSM challenge and HSM token audience (default https://{dns-suffix}:{port})")
	f.StringArrayVar(&cfg.BackupDirs, "backup-dir", nil, "absolute directory that file:// backup destinations may name (repeatable; --dev adds {data-dir}/backups)")
	f.BoolVar(&cfg.StrictIssuers, "strict-issuers", false, "refuse to start when a trusted issuer's keys cannot be fetched (default: start, log why and retry every minute)")
	f.StringSliceVar(&cfg.Identity.RegionAdmins, "region-admin", nil, "object id of an external principal that administers the region (repeatable)")
	f.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "concurrent connections of the region (keep well below the file-descriptor limit)")
	f.IntVar(&cfg.MaxConnectionsPerClient, "max-connections-per-client", cfg.MaxConnectionsPerClient, "concurrent connections of one client address, IPv6 by /64 (0 = no cap; raise behind a proxy or NAT)")
	f.DurationVar(&cfg.RequestBodyTimeout.Duration, "request-body-timeout", cfg.RequestBodyTimeout.Duration, "time a request body may take to arrive after its headers (408 beyond)")
	f.IntVar(&cfg.MaxKeysPerHsm, "max-keys-per-hsm", cfg.MaxKeysPerHsm, "keys an HSM may hold, soft-deleted ones included (0 = no limit)")
	f.DurationVar(&cfg.ResponseTimeout.Duration, "response-timeout", cfg.ResponseTimeout.Duration, "time from a request's headers to the end of its response")
	f.StringVar(&cfg.Audit.Path, "audit-log", "", "audit log file, one hash-chained JSON line per request (default {data-dir}/audit/audit.log)")
	f.IntVar(&cfg.Audit.MaxSizeMB, "audit-max-size-mb", cfg.Audit.MaxSizeMB, "rotate the audit log past this size")
	f.DurationVar(&cfg.Audit.SyncInterval.Duration, "audit-sync-interval", cfg.Audit.SyncInterval.Duration, "how often the audit log is fsynced (0s: before every answer)")
	f.BoolVar(&cfg.Audit.FailClosed, "audit-fail-closed", cfg.Audit.FailClosed, "answer 500 when a request's audit line cannot be written (false: answer and log the failure)")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "server log format: text or json")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "least level logged: debug, info, warn or error (debug adds why tokens were refused)")
	f.StringVar(&cfg.Cluster.NodeID, "node-id", "", "cluster mode: this node's id (see docs/cluster.md; default: a single-node region)")
	f.StringVar(&cfg.Cluster.RaftAddr, "raft-addr", "", "cluster mode: host:port of the cluster link (raft, mutual TLS)")
	f.StringVar(&cfg.Cluster.RaftAdvertiseAddr, "raft-advertise-addr", "", "cluster mode: the address other nodes dial (default --raft-addr)")
	f.BoolVar(&cfg.Cluster.Bootstrap, "bootstrap", false, "cluster mode: form a new cluster with this node as its first voter (a new data directory)")
	f.StringVar(&cfg.Cluster.Join, "join", "", "cluster mode: region endpoint of a member to join through (https://host:port)")
	f.StringVar(&cfg.Cluster.JoinToken, "join-token", "", "cluster mode: join token from tresor cluster join-token (or TRESOR_JOIN_TOKEN)")
	f.StringVar(&cfg.Cluster.JoinCAFile, "join-ca-file", "", "cluster mode: CA of the member's region endpoint (default: the system's roots)")
	f.DurationVar(&cfg.Cluster.Lease.Duration, "lease", 0, "cluster mode: how long a follower serves without hearing from a leader (default 5s)")
	f.Uint64Var(&cfg.Cluster.SnapshotThreshold, "raft-snapshot-threshold", 0, "cluster mode: log entries between two snapshots of the store (default 8192)")
	f.Uint64Var(&cfg.Cluster.TrailingLogs, "raft-trailing-logs", 0, "cluster mode: log entries kept after a snapshot for lagging followers (default 10240)")
	f.DurationVar(&cfg.Cluster.SnapshotInterval.Duration, "raft-snapshot-interval", 0, "cluster mode: how often raft checks whether to snapshot the store (default 2m)")
	f.StringVar(&cfg.AdminListen, "admin-listen", "", "address of the plain-HTTP admin listener for /metrics, /healthz and /readyz (default: none; keep it on loopback or a private network)")
	f.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's profiles under /debug/pprof/ on the admin listener (needs --admin-listen)")
	return cmd
}

// overlayFlags copies the flags set on the command line into dst.
func overlayFlags(cmd *cobra.Command, dst *Config, src Config) {
	f := cmd.Flags()
	set := func(name string, fn func()) {
		if f.Changed(name) {
			fn()
		}
	}
	set("data-dir", func() { dst.DataDir = src.DataDir })
	set("node-id", func() { dst.Cluster.NodeID = src.Cluster.NodeID })
	set("raft-addr", func() { dst.Cluster.RaftAddr = src.Cluster.RaftAddr })
	set("raft-advertise-addr", func() { dst.Cluster.RaftAdvertiseAddr = src.Cluster.RaftAdvertiseAddr })
	set("bootstrap", func() { dst.Cluster.Bootstrap = src.Cluster.Bootstrap })
	set("join", func() { dst.Cluster.Join = src.Cluster.Join })
	set("join-token", func() { dst.Cluster.JoinToken = src.Cluster.JoinToken })
	set("join-ca-file", func() { dst.Cluster.JoinCAFile = src.Cluster.JoinCAFile })
	set("lease", func() { dst.Cluster.Lease = src.Cluster.Lease })
	set("raft-snapshot-threshold", func() { dst.Cluster.SnapshotThreshold = src.Cluster.SnapshotThreshold })
	set("raft-snapshot-interval", func() { dst.Cluster.SnapshotInterval = src.Cluster.SnapshotInterval })
	set("raft-trailing-logs", func() { dst.Cluster.TrailingLogs = src.Cluster.TrailingLogs })
	set("listen", func() { dst.Listen = src.Listen })
	set("region", func() { dst.Region = src.Region })
	set("region-display-name", func() { dst.RegionDisplayName = src.RegionDisplayName })
	set("dns-suffix", func() { dst.DNSSuffix = src.DNSSuffix })
	set("public-url", func() { dst.PublicURL = src.PublicURL })
	set("tls-cert", func() { dst.TLSCert = src.TLSCert })
	set("tls-key", func() { dst.TLSKey = src.TLSKey })
	set("dev", func() { dst.Dev = src.Dev })
	set("seal-key-file", func() { dst.SealKeyFile = src.SealKeyFile })
	set("seal-type", func() { dst.Seal.Type = src.Seal.Type })
	set("seal-library", func() { dst.Seal.Library = src.Seal.Library })
	set("seal-token-label", func() { dst.Seal.TokenLabel = src.Seal.TokenLabel })
	set("seal-pin-file", func() { dst.Seal.PINFile = src.Seal.PINFile })
	set("seal-key-label", func() { dst.Seal.KeyLabel = src.Seal.KeyLabel })
	set("purge-interval", func() { dst.PurgeInterval = src.PurgeInterval })
	set("tenant-id", func() { dst.Identity.TenantID = src.Identity.TenantID })
	set("challenge-authorization", func() { dst.Identity.Authorization = src.Identity.Authorization })
	set("challenge-resource", func() { dst.Identity.Resource = src.Identity.Resource })
	set("backup-dir", func() { dst.BackupDirs = src.BackupDirs })
	set("strict-issuers", func() { dst.StrictIssuers = src.StrictIssuers })
	set("region-admin", func() { dst.Identity.RegionAdmins = src.Identity.RegionAdmins })
	set("max-connections", func() { dst.MaxConnections = src.MaxConnections })
	set("max-connections-per-client", func() { dst.MaxConnectionsPerClient = src.MaxConnectionsPerClient })
	set("request-body-timeout", func() { dst.RequestBodyTimeout = src.RequestBodyTimeout })
	set("response-timeout", func() { dst.ResponseTimeout = src.ResponseTimeout })
	set("max-keys-per-hsm", func() { dst.MaxKeysPerHsm = src.MaxKeysPerHsm })
	set("audit-log", func() { dst.Audit.Path = src.Audit.Path })
	set("audit-max-size-mb", func() { dst.Audit.MaxSizeMB = src.Audit.MaxSizeMB })
	set("audit-fail-closed", func() { dst.Audit.FailClosed = src.Audit.FailClosed })
	set("audit-sync-interval", func() { dst.Audit.SyncInterval = src.Audit.SyncInterval })
	set("log-format", func() { dst.LogFormat = src.LogFormat })
	set("log-level", func() { dst.LogLevel = src.LogLevel })
	set("admin-listen", func() { dst.AdminListen = src.AdminListen })
	set("pprof", func() { dst.Pprof = src.Pprof })
}

func portOf(addr string) int {
	var p int
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			fmt.Sscanf(addr[i+1:], "%d", &p)
			break
		}
	}
	return p
}
