package events_test

import (
	"io"
	"log/slog"
	"testing"
)

func testLogger(testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
