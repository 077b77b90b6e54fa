package testkit

import (
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build compiles the Go package pkg into a temporary directory as name and returns the
// binary's path, so a test runs the command exactly as it ships. dir is where pkg is resolved
// from ("" for the test's own directory, where pkg "." is the command under test).
func Build(t testing.TB, dir, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// FreeAddr is a loopback address nothing listened on when it was picked, for a process the
// test starts to bind.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
