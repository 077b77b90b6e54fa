// Package testkit holds what tests of every package share that needs no cluster: waiting for
// state another goroutine moves, and collecting what a component logs.
package testkit

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// Poll is the longest Eventually waits between two questions. It asks again after a
// millisecond first and doubles the wait up to Poll, so state that settles at once (a frame
// handed to another goroutine) costs a test little and state that takes seconds (an API
// server) is not asked about more than twenty times a second.
const Poll = 50 * time.Millisecond

// Eventually asks cond until it holds, and fails the test when timeout passes first, with what
// was awaited and cond's last word on why not. It is for state another goroutine or process
// moves (a manager, an agent, the API server); a test that drives the code itself awaits
// nothing.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, why)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, Poll)
	}
}

// LogBuffer collects what a component logs, from any goroutine, so a test can search every
// line of it: as a logr.Logger's sink (Logger) or as a process's stdout and stderr (it is an
// io.Writer).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines are the non-empty lines written so far.
func (l *LogBuffer) Lines() []string {
	return strings.FieldsFunc(l.String(), func(r rune) bool { return r == '\n' })
}

// Logger logs into the buffer, one line per record, at every verbosity: a test that proves
// nothing secret is logged must see the debug lines too.
func (l *LogBuffer) Logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		_, _ = l.Write([]byte(prefix + " " + args + "\n"))
	}, funcr.Options{Verbosity: 10})
}
