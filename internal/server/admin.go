package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"tresor/internal/store"
)

// logLevels are the values of Config.LogLevel.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

// newLogger builds the server's logger in cfg's format, at level (a
// reload may change it).
func newLogger(cfg Config, w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Errors of [Server.Ready].
var (
	// ErrStarting is returned while New has not opened everything yet.
	ErrStarting = errors.New("starting: the store and seal are not open yet")
	// ErrClosing is returned once Close has begun.
	ErrClosing = errors.New("shutting down: the store is closing")
	// ErrSealed is returned while the seal cannot unwrap the root keys.
	ErrSealed = errors.New("sealed: the seal cannot unwrap the region's keys")
)

// sealState is implemented by seals that can be sealed while the server
// runs (a PKCS#11 seal whose token went away); the file seal never is.
type sealState interface {
	Sealed() bool
}

// Ready tells whether the region can serve: nil once New has opened the
// store and the seal, until Close begins; else why not. It also reads the
// store, so a store closed under the server makes it not ready.
func (s *Server) Ready(ctx context.Context) error {
	switch {
	case s.closing.Load():
		return ErrClosing
	case !s.ready.Load():
		return ErrStarting
	}
	if ss, ok := s.seal.(sealState); ok && ss.Sealed() {
		return ErrSealed
	}
	if err := s.st.View(ctx, func(store.Reader) error { return nil }); err != nil {
		if errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("the store is closed")
		}
		return fmt.Errorf("the store cannot be read: %w", err)
	}
	return nil
}

// AdminAddr is the admin listener's address ("" without one).
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// AdminHandler serves the admin endpoints: /metrics (Prometheus text
// format), /healthz (the process is alive: always 200 "ok") and /readyz
// (200 "ok" when [Server.Ready], else 503 with the reason); with
// Config.Pprof also Go's profiles under /debug/pprof/ (net/http/pprof).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	if s.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// startAdmin opens the admin listener and serves it until Close ends: it
// outlives the store so that /readyz answers 503 while the region closes.
func (s *Server) startAdmin(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	s.adminLn = ln
	writeTimeout := 30 * time.Second
	if s.cfg.Pprof {
		// A CPU profile or trace answers after the seconds it was asked
		// for, and pprof refuses any longer than the write timeout.
		writeTimeout = time.Hour
	}
	s.adminHTTP = &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.adminHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener", "err", err)
		}
	}()
	return nil
}

// storeSize is the store file's size in bytes (0 when it cannot be read).
func storeSize(path string) func() float64 {
	return func() float64 {
		fi, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return float64(fi.Size())
	}
}
