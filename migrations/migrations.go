// Package migrations embeds Lintel's ordered SQL migrations. Files are named
// NNNN_name.up.sql / NNNN_name.down.sql and applied by bun's migrator.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
