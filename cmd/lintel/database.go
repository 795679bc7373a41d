package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/pgembed"
	"github.com/lintel/lintel/internal/store"
)

// database is an open, migrated database and whatever must stop with it.
type database struct {
	*store.DB
	embedded *pgembed.Server
}

// openDatabase connects to DATABASE_URL, or starts the embedded PostgreSQL
// in the data directory, and brings the schema up to date.
func openDatabase(ctx context.Context, cfg *config.Config, log *slog.Logger) (*database, error) {
	url := cfg.DatabaseURL
	d := &database{}
	if url == "" {
		srv, err := pgembed.Start(ctx, pgembed.Options{DataDir: cfg.DataDir, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("start embedded PostgreSQL: %w", err)
		}
		d.embedded = srv
		url = srv.URL("")
		log.Info("embedded PostgreSQL started", "data_dir", cfg.DataDir)
	}
	db, err := store.Open(ctx, url, store.Options{MaxConns: int32(cfg.DBMaxConns)})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.DB = db
	if err := db.MigrateUp(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close disconnects and stops the embedded PostgreSQL, if any.
func (d *database) Close() {
	if d.DB != nil {
		d.DB.Close()
	}
	if d.embedded != nil {
		_ = d.embedded.Stop()
	}
}
