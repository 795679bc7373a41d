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
	"os/signal"
	"syscall"
	"time"

	"github.com/lintel/lintel/internal/config"
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

	a, err := newApp(ctx, cfg, db.DB, log)
	if err != nil {
		return err
	}
	defer a.stop()
	if a.bootstrap != nil {
		fmt.Fprintf(stdout, "\nFirst start: created organisation %q and its administrator.\n  e-mail:   %s\n  password: %s\nThis password is shown only now; change it with `lintel operator set-password`.\n\n",
			cfg.BootstrapOrg, a.bootstrap.Email, a.bootstrap.Password)
	}

	stopDebug, err := startDebugServer(cfg.DebugAddr, log)
	if err != nil {
		return err
	}
	defer stopDebug()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	server := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
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
	drainBeforeShutdown(a, cfg.ShutdownDrain, log)
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	// Stop listening and let the requests in flight finish; then close the
	// subscriptions (Shutdown leaves hijacked connections alone) with 1001
	// so their clients reconnect elsewhere; River and the event listener
	// stop last, as subscriptions and requests needed them.
	if err := server.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	if err := a.websockets.CloseAll(shutdownCtx); err != nil {
		log.Warn("closing subscriptions", "err", err)
	}
	a.stopWithin(shutdownCtx)
	log.Info("stopped")
	return nil
}

// drainBeforeShutdown makes /readyz answer 503 for d while the server goes
// on serving normally, so that load balancers, which poll /readyz, send new
// requests and reconnecting subscribers to other replicas before this one
// stops listening: a rolling restart then fails no request. A second
// SIGINT or SIGTERM (a second Ctrl-C) ends the drain at once.
func drainBeforeShutdown(a *app, d time.Duration, log *slog.Logger) {
	a.draining.Store(true)
	if d <= 0 {
		return
	}
	// Registered after the first signal was delivered (main's
	// signal.NotifyContext cancelled ctx), so only a later one arrives.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info("draining: /readyz answers 503", "for", d.String())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-again:
		log.Info("second signal: drain cut short")
	}
}
