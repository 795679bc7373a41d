package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lintel/lintel/graph"
	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/httpx"
	"github.com/lintel/lintel/internal/jobs"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text")
}

func serve(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cfg, _, err := config.Load("lintel serve", args, getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	log, err := newLogger(cfg, os.Stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	configuredKey, err := cfg.SigningKey()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	key, err := auth.SigningKey(ctx, db.Bun, configuredKey)
	if err != nil {
		return err
	}
	authCfg := auth.DefaultConfig()
	authCfg.AccessTTL, authCfg.RefreshTTL = cfg.AccessTTL, cfg.RefreshTTL
	signer, err := auth.NewSigner(key, cfg.AccessTTL)
	if err != nil {
		return err
	}
	authSvc := auth.NewService(db.Bun, signer, authCfg)
	boot, err := authSvc.Bootstrap(ctx, cfg.BootstrapOrg, cfg.BootstrapEmail)
	if err != nil {
		return err
	}
	if boot != nil {
		fmt.Fprintf(stdout, "\nFirst start: created organisation %q and its administrator.\n  e-mail:   %s\n  password: %s\nThis password is shown only now; change it with `lintel operator set-password`.\n\n",
			cfg.BootstrapOrg, boot.Email, boot.Password)
	}

	templateSvc := templates.NewService(db.Bun)
	recordCfg := records.DefaultConfig()
	recordCfg.PhotoMaxBytes = cfg.PhotoMaxBytes
	recordSvc := records.NewService(db.Bun, templateSvc, recordCfg)

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	var background sync.WaitGroup
	broker := events.NewBroker(db.Pool.Config().ConnConfig, log)
	background.Go(func() { broker.Run(runCtx) })

	river, err := jobs.NewClient(db.DB, log, jobs.Config{})
	if err != nil {
		return err
	}
	if err := river.Start(runCtx); err != nil {
		return fmt.Errorf("start job runner: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_subscribers", Help: "Event subscribers on this process."},
		func() float64 { return float64(broker.Subscribers()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_db_pool_acquired_conns", Help: "Database connections in use."},
		func() float64 { return float64(db.Pool.Stat().AcquiredConns()) }))
	metrics := httpx.NewMetrics(reg)

	resolver := &graph.Resolver{Auth: authSvc, Templates: templateSvc, Records: recordSvc, Events: broker}
	gql := graph.NewHandler(resolver, signer, graph.Options{
		Introspection: cfg.IntrospectionEnabled(), MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes,
		MaxDepth: cfg.MaxQueryDepth, MaxComplexity: cfg.MaxComplexity, AllowedOrigins: cfg.Origins(), Logger: log,
	})
	mux := http.NewServeMux()
	mux.Handle("/graphql", httpx.Wrap(log, metrics, "graphql", gql))
	if cfg.IntrospectionEnabled() {
		mux.Handle("GET /{$}", httpx.Wrap(log, metrics, "graphiql", playground.Handler("Lintel", "/graphql")))
	}
	mux.Handle("GET /records/{id}/photo", httpx.Wrap(log, metrics, "photo", graph.Authenticator(signer)(photoHandler(recordSvc))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		pingCtx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var problems []string
		if err := db.Ping(pingCtx); err != nil {
			problems = append(problems, "database: "+err.Error())
		}
		if !broker.Connected() {
			problems = append(problems, "event listener: not connected")
		}
		if len(problems) > 0 {
			http.Error(w, strings.Join(problems, "\n"), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("serving", "addr", "http://"+ln.Addr().String()+"/graphql", "introspection", cfg.IntrospectionEnabled())
	fmt.Fprintf(stdout, "Lintel is serving GraphQL at http://%s/graphql\n", ln.Addr())

	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	if err := river.Stop(shutdownCtx); err != nil {
		log.Warn("job runner stop", "err", err)
	}
	cancelRun()
	background.Wait()
	log.Info("stopped")
	return nil
}

// photoHandler serves a record's photo to a caller of its organisation.
func photoHandler(svc *records.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		ct, data, err := svc.GetPhoto(r.Context(), id)
		switch apperr.CodeOf(err) {
		case "":
		case apperr.Unauthenticated:
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		case apperr.Forbidden:
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		case apperr.NotFound:
			http.Error(w, "not found", http.StatusNotFound)
			return
		default:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(data)
	})
}
