package credentials

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

// StaticKeySet is a KeySet held in memory: a gateway's keys from the
// published JWKS (ParseJWKS), or a benchmark's. Replace swaps in a new set
// while verifiers use it.
type StaticKeySet struct {
	keys atomic.Pointer[map[string]PublicKey]
}

// NewStaticKeySet returns a key set of keys.
func NewStaticKeySet(keys ...PublicKey) *StaticKeySet {
	s := &StaticKeySet{}
	s.Replace(keys)
	return s
}

// Replace makes keys the whole set.
func (s *StaticKeySet) Replace(keys []PublicKey) {
	m := make(map[string]PublicKey, len(keys))
	for _, k := range keys {
		m[k.Kid] = k
	}
	s.keys.Store(&m)
}

// Key implements KeySet.
func (s *StaticKeySet) Key(_ context.Context, kid string) (PublicKey, bool, error) {
	k, ok := (*s.keys.Load())[kid]
	return k, ok, nil
}

// RevocationSet is a RevocationChecker held in memory: the credential IDs a
// gateway has read from the revocation feed. Unlike NewDBRevocations it
// lists what is revoked, so a credential it has not heard of passes.
type RevocationSet struct {
	mu  sync.RWMutex
	ids map[uuid.UUID]struct{}
}

// NewRevocationSet returns a set holding ids.
func NewRevocationSet(ids ...uuid.UUID) *RevocationSet {
	s := &RevocationSet{ids: make(map[uuid.UUID]struct{}, len(ids))}
	s.Add(ids...)
	return s
}

// Add revokes ids.
func (s *RevocationSet) Add(ids ...uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.ids[id] = struct{}{}
	}
}

// Revoked implements RevocationChecker.
func (s *RevocationSet) Revoked(_ context.Context, id uuid.UUID) (bool, error) {
	s.mu.RLock()
	_, ok := s.ids[id]
	s.mu.RUnlock()
	return ok, nil
}
