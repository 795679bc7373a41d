package sealer

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealedSecretsOpenOnlyWithTheirKeyAndPlace(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal([]byte("private key"), []byte("kid-1"))
	if bytes.Contains(sealed, []byte("private key")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := s.Open(sealed, []byte("kid-1"))
	if err != nil || string(got) != "private key" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("kid-2")); !errors.Is(err, ErrOpen) {
		t.Fatalf("opening under another key ID: %v, want ErrOpen", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed, []byte("kid-1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("opening with another master key: %v, want ErrOpen", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, []byte("kid-1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("opening a damaged value: %v, want ErrOpen", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("a short master key was accepted")
	}
}
