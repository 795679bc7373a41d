// Package sealer encrypts small secrets at rest (credential issuing keys,
// invitation links waiting in the outbox) with the server's master key, so
// that a copy of the database alone does not reveal them.
package sealer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer seals and opens secrets with AES-256-GCM. The associated data
// binds a sealed value to where it is stored (a key ID, a message ID), so
// a sealed value copied to another row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for a 32-byte master key.
func New(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("sealer: master key must be 32 bytes, got %d", len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to associated; the nonce is prepended.
func (s *Sealer) Seal(plaintext, associated []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("sealer: no randomness: " + err.Error())
	}
	return s.aead.Seal(nonce, nonce, plaintext, associated)
}

// ErrOpen means a sealed value was damaged, bound to other data, or sealed
// with another master key.
var ErrOpen = errors.New("sealer: cannot open sealed value (wrong master key or damaged data)")

// Open decrypts a value from Seal with the same associated data.
func (s *Sealer) Open(sealed, associated []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], associated)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
