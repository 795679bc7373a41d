package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	rivers "github.com/riverqueue/river"

	"github.com/lintel/lintel/graph"
	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/exports"
	"github.com/lintel/lintel/internal/gateways"
	"github.com/lintel/lintel/internal/httpx"
	"github.com/lintel/lintel/internal/imports"
	"github.com/lintel/lintel/internal/invitations"
	"github.com/lintel/lintel/internal/jobs"
	"github.com/lintel/lintel/internal/outbox"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/templates"
	"github.com/lintel/lintel/internal/wallet"
)

// app is one running Lintel server minus its listener: the services, the
// background workers and the HTTP handler. Tests build it on a test
// database and serve it with httptest.
type app struct {
	handler   http.Handler
	bootstrap *auth.BootstrapResult
	broker    *events.Broker
	river     *jobs.Client
	exports   *exports.Service
	// websockets closes subscriptions at shutdown; draining makes /readyz
	// answer 503 (see serve).
	websockets *graph.Websockets
	draining   atomic.Bool

	cancelRun  context.CancelFunc
	background sync.WaitGroup
	stopOnce   sync.Once
}

func newApp(ctx context.Context, cfg *config.Config, db *store.DB, log *slog.Logger) (*app, error) {
	configuredKey, err := cfg.SigningKey()
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	key, err := auth.SigningKey(ctx, db.Bun, configuredKey)
	if err != nil {
		return nil, err
	}
	authCfg := auth.DefaultConfig()
	authCfg.AccessTTL, authCfg.RefreshTTL = cfg.AccessTTL, cfg.RefreshTTL
	signer, err := auth.NewSigner(key, cfg.AccessTTL)
	if err != nil {
		return nil, err
	}
	authSvc := auth.NewService(db.Bun, signer, authCfg)
	boot, err := authSvc.Bootstrap(ctx, cfg.BootstrapOrg, cfg.BootstrapEmail)
	if err != nil {
		return nil, err
	}

	templateSvc := templates.NewService(db)
	recordCfg := records.DefaultConfig()
	recordCfg.PhotoMaxBytes = cfg.PhotoMaxBytes
	recordSvc := records.NewService(db, templateSvc, recordCfg)

	importCfg := imports.DefaultConfig()
	importCfg.MaxFileBytes = cfg.MaxImportBytes
	// A run must end before River would hand its job to another replica.
	importCfg.JobTimeout = min(importCfg.JobTimeout, cfg.RescueStuckJobsAfter*9/10)
	importSvc := imports.NewService(db, templateSvc, importCfg, log)
	exportCfg := exports.DefaultConfig()
	exportCfg.Retention, exportCfg.LinkTTL = cfg.ExportRetention, cfg.ExportLinkTTL
	exportCfg.JobTimeout = min(exportCfg.JobTimeout, cfg.RescueStuckJobsAfter*9/10)
	// Download links are signed with a key derived from the access-token
	// key, which every replica already shares.
	exportSvc := exports.NewService(db, templateSvc, exportCfg, exports.DeriveLinkKey(key), log)
	seal, err := newSealer(cfg)
	if err != nil {
		return nil, err
	}
	mailCfg, err := outbox.ConfigFrom(cfg)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	mailCfg.JobTimeout = min(mailCfg.JobTimeout, cfg.RescueStuckJobsAfter*9/10)
	mail := outbox.New(db, seal, mailCfg, log)
	invCfg := invitations.DefaultConfig()
	invCfg.InvitationTTL, invCfg.CredentialTTL, invCfg.BaseURL, invCfg.CodeWindow = cfg.InvitationTTL, cfg.CredentialTTL, cfg.BaseURL(), cfg.CodeWindow
	issuingKeys := credentials.NewKeys(db.Bun, seal)
	invitationSvc := invitations.NewService(db, issuingKeys, mail, invCfg, log)
	gatewaySvc := gateways.NewService(db)
	importSvc.SetInvitations(invitationSvc)
	river, err := jobs.NewClient(db, log, jobs.Config{RescueStuckJobsAfter: cfg.RescueStuckJobsAfter, ImportRetention: cfg.ImportRetention}, func(w *rivers.Workers) error {
		return rivers.AddWorkerSafely(w, imports.NewWorker(importSvc))
	}, func(w *rivers.Workers) error {
		return rivers.AddWorkerSafely(w, exports.NewWorker(exportSvc))
	}, func(w *rivers.Workers) error {
		return rivers.AddWorkerSafely(w, exports.NewPruneWorker(exportSvc))
	}, func(w *rivers.Workers) error {
		return rivers.AddWorkerSafely(w, auditlog.NewPruneWorker(db, cfg.AuditRetention))
	}, func(w *rivers.Workers) error {
		return rivers.AddWorkerSafely(w, outbox.NewWorker(mail))
	}, func(w *rivers.Workers) error {
		return rivers.AddWorkerSafely(w, invitations.NewExpireWorker(db))
	})
	if err != nil {
		return nil, err
	}
	importSvc.SetQueue(river)
	exportSvc.SetQueue(river)
	mail.SetQueue(river)
	if err := river.Queues().Add(exports.Queue, rivers.QueueConfig{MaxWorkers: exports.QueueWorkers}); err != nil {
		return nil, fmt.Errorf("add the export queue: %w", err)
	}
	// Expired export files and audit events past their retention go once
	// an hour (and at start, so a long-stopped server catches up).
	river.PeriodicJobs().AddMany([]*rivers.PeriodicJob{
		rivers.NewPeriodicJob(rivers.PeriodicInterval(time.Hour), func() (rivers.JobArgs, *rivers.InsertOpts) {
			return exports.PruneArgs{}, nil
		}, &rivers.PeriodicJobOpts{RunOnStart: true}),
		rivers.NewPeriodicJob(rivers.PeriodicInterval(time.Hour), func() (rivers.JobArgs, *rivers.InsertOpts) {
			return auditlog.PruneArgs{}, nil
		}, &rivers.PeriodicJobOpts{RunOnStart: true}),
		// Credentials end within a minute of their record's expiry.
		rivers.NewPeriodicJob(rivers.PeriodicInterval(time.Minute), func() (rivers.JobArgs, *rivers.InsertOpts) {
			return invitations.ExpireArgs{}, nil
		}, &rivers.PeriodicJobOpts{RunOnStart: true}),
		outbox.PeriodicJob(),
	})
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	a := &app{bootstrap: boot, river: river, exports: exportSvc, websockets: graph.NewWebsockets(), cancelRun: cancelRun}
	broker := events.NewBroker(db.Pool.Config().ConnConfig, log)
	a.broker = broker
	a.background.Go(func() { broker.Run(runCtx) })
	if err := river.Start(runCtx); err != nil {
		cancelRun()
		a.background.Wait()
		return nil, fmt.Errorf("start job runner: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_subscribers", Help: "Event subscribers on this process."},
		func() float64 { return float64(broker.Subscribers()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_db_pool_acquired_conns", Help: "Database connections in use."},
		func() float64 { return float64(db.Pool.Stat().AcquiredConns()) }))
	metrics := httpx.NewMetrics(reg)

	resolver := &graph.Resolver{Auth: authSvc, TemplateService: templateSvc, RecordService: recordSvc, Events: broker, ImportService: importSvc,
		ExportService: exportSvc, AuditService: auditlog.NewService(db), Invitations: invitationSvc, OutboxService: mail,
		GatewayService: gatewaySvc, IssuingKeys: issuingKeys}
	gql := graph.NewHandler(resolver, signer, graph.Options{
		Introspection: cfg.IntrospectionEnabled(), MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes,
		MaxDepth: cfg.MaxQueryDepth, MaxComplexity: cfg.MaxComplexity, AllowedOrigins: cfg.Origins(), Logger: log,
		GatewayAuth: gatewaySvc.Authenticate, Websockets: a.websockets, PlainRecordPages: cfg.GraphQLPageRenderer == "off", Metrics: reg,
	})
	mux := http.NewServeMux()
	mux.Handle("/graphql", httpx.Wrap(log, metrics, "graphql", gql))
	if cfg.IntrospectionEnabled() {
		mux.Handle("GET /{$}", httpx.Wrap(log, metrics, "graphiql", playground.Handler("Lintel", "/graphql")))
	}
	mux.Handle("GET /imports/{id}/results.csv", httpx.Wrap(log, metrics, "import_results", graph.Authenticator(signer)(resultsHandler(importSvc))))
	// No Authorization header: the signed link is the credential, so a
	// browser can follow it.
	mux.Handle("GET /exports/{id}/download", httpx.Wrap(log, metrics, "export_download", downloadHandler(exportSvc, log)))
	mux.Handle("GET /records/{id}/photo", httpx.Wrap(log, metrics, "photo", graph.Authenticator(signer)(photoHandler(recordSvc))))
	mux.Handle("GET /records/{id}/barcode.png", httpx.Wrap(log, metrics, "barcode", graph.Authenticator(signer)(barcodeHandler(recordSvc, templateSvc))))
	mux.Handle("GET /.well-known/jwks.json", httpx.Wrap(log, metrics, "jwks", jwksHandler(invitationSvc)))
	// The wallet page is public: the invitation token in its path, and the
	// device key in the phone, are the credentials.
	mux.Handle("/wallet/", httpx.Wrap(log, metrics, "wallet", wallet.Handler()))
	mux.Handle("GET /wallet/invite/{token}/photo", httpx.Wrap(log, metrics, "wallet_photo", walletPhotoHandler(invitationSvc)))
	mux.Handle("GET /healthz", httpx.Wrap(log, metrics, "healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })))
	mux.Handle("GET /readyz", httpx.Wrap(log, metrics, "readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
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
	})))
	mux.Handle("GET /metrics", httpx.Wrap(log, metrics, "metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	a.handler = mux
	return a, nil
}

// stop ends the background work, waiting at most a few seconds.
func (a *app) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.stopWithin(ctx)
}

func (a *app) stopWithin(ctx context.Context) {
	a.stopOnce.Do(func() {
		if err := a.river.Stop(ctx); err != nil {
			_ = a.river.StopAndCancel(context.Background())
		}
		a.cancelRun()
		a.background.Wait()
	})
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
		if err != nil {
			writeDomainError(w, err)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(data)
	})
}

// resultsHandler streams an import's per-row results CSV.
func resultsHandler(svc *imports.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if _, err := svc.Get(r.Context(), id); err != nil {
			writeDomainError(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "import-"+id.String()+"-results.csv"))
		if err := svc.WriteResults(r.Context(), id, w); err != nil {
			// Headers are gone; the truncated body is all we can signal.
			return
		}
	})
}

// downloadHandler streams an export's file to the holder of a valid signed
// link. A bad link gets a bare 403, whatever is wrong with it.
func downloadHandler(svc *exports.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		f, err := svc.Open(r.Context(), id, r.URL.Query())
		if err != nil {
			if apperr.CodeOf(err) == apperr.Internal {
				log.ErrorContext(r.Context(), "export download", "export", id, "err", err)
			}
			writeDomainError(w, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
		h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "private, no-store")
		h.Set("ETag", `"`+f.SHA256+`"`)
		if _, err := io.Copy(w, f); err != nil {
			// Headers are gone; the short body (against Content-Length) is
			// what the client sees.
			log.WarnContext(r.Context(), "export download interrupted", "export", id, "err", err)
		}
	})
}

// writeDomainError answers a plain HTTP request with the status of a
// domain error.
func writeDomainError(w http.ResponseWriter, err error) {
	switch apperr.CodeOf(err) {
	case apperr.Unauthenticated:
		http.Error(w, "authentication required", http.StatusUnauthorized)
	case apperr.Forbidden:
		http.Error(w, "forbidden", http.StatusForbidden)
	case apperr.NotFound:
		http.Error(w, "not found", http.StatusNotFound)
	default:
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}
