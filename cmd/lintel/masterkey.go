package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/sealer"
)

// masterKeyFile is where the embedded setup keeps its generated master key:
// beside the database files but outside the database, so a dump of the
// database alone opens nothing.
const masterKeyFile = "master-key"

// loadMasterKey returns the configured master key or, with the embedded
// database, the one in the data directory (created on first use). With an
// external database there is no safe place to invent one, since every
// replica must share it, so it must be configured.
func loadMasterKey(cfg *config.Config) ([]byte, error) {
	key, err := cfg.MasterKeyBytes()
	if err != nil || key != nil {
		return key, err
	}
	if cfg.DatabaseURL != "" {
		return nil, errors.New("LINTEL_MASTER_KEY (or --master-key) is required with an external database: every replica must share it; create one with: head -c32 /dev/urandom | base64")
	}
	path := filepath.Join(cfg.DataDir, masterKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not a base64 32-byte key", path)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return loadMasterKey(cfg)
		}
		return nil, fmt.Errorf("write master key: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("write master key: %w", err)
	}
	return k, nil
}

// newSealer returns the master-key sealer for cfg.
func newSealer(cfg *config.Config) (*sealer.Sealer, error) {
	k, err := loadMasterKey(cfg)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return sealer.New(k)
}

// benchMasterKey gives a benchmark run on an external database a throwaway
// master key when none is configured: what it seals is thrown away with it.
func benchMasterKey(cfg *config.Config) {
	if cfg.MasterKey != "" || cfg.DatabaseURL == "" {
		return
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	cfg.MasterKey = base64.StdEncoding.EncodeToString(k)
}
