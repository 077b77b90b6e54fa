package controllers

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// randReader is crypto/rand, named so tests read as what they use.
type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return rand.Read(p) }

func pemOf(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
