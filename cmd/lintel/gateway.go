package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/lintel/lintel/readers/gateway"
)

// gatewayCmd runs a door gateway: `lintel gateway --config gateway.yaml`.
// It runs until ctx ends (SIGINT or SIGTERM) and logs JSON to stderr.
func gatewayCmd(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("lintel gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", gatewayEnv(getenv, "LINTEL_GATEWAY_CONFIG", "gateway.yaml"),
		"the gateway's YAML configuration (env LINTEL_GATEWAY_CONFIG)")
	levelName := fs.String("log-level", gatewayEnv(getenv, "LINTEL_LOG_LEVEL", "info"), "debug, info, warn or error (env LINTEL_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("lintel gateway takes no arguments, got %q", fs.Args())}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--log-level: %w", err)}
	}
	cfg, err := gateway.LoadConfig(*path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	return gateway.Run(ctx, cfg, log)
}

func gatewayEnv(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
