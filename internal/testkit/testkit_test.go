package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping the goroutine.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

// TestEventuallyReturnsOnceTheConditionHolds: a condition that holds on the third call ends
// the wait there, without a failure.
func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	calls := 0
	Eventually(rec, time.Minute, "the third call", func() (bool, string) {
		calls++
		return calls == 3, fmt.Sprint(calls)
	})
	if rec.fatal != "" || calls != 3 {
		t.Fatalf("%d calls, failure %q", calls, rec.fatal)
	}
}

// TestEventuallyFailsWithTheLastReason: a condition that never holds fails the test once the
// timeout has passed, naming what was awaited and the condition's last reason.
func TestEventuallyFailsWithTheLastReason(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	start, calls := time.Now(), 0
	Eventually(rec, 3*Poll, "the impossible", func() (bool, string) {
		calls++
		return false, fmt.Sprintf("attempt %d", calls)
	})
	if took := time.Since(start); took < 3*Poll {
		t.Errorf("gave up after %s, before the timeout", took)
	}
	if !strings.Contains(rec.fatal, "the impossible") || !strings.Contains(rec.fatal, fmt.Sprintf("attempt %d", calls)) {
		t.Errorf("failure %q does not name what was awaited and the last reason", rec.fatal)
	}
}

// TestLogBufferKeepsEveryLineFromEveryGoroutine: records logged concurrently through Logger
// and written directly all arrive, one per line.
func TestLogBufferKeepsEveryLineFromEveryGoroutine(t *testing.T) {
	var buf LogBuffer
	log := buf.Logger().WithName("test")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			log.V(5).Info("Debug line", "worker", i)
			_, _ = fmt.Fprintf(&buf, "raw %d\n", i)
		})
	}
	wg.Wait()
	lines := buf.Lines()
	if len(lines) != 40 {
		t.Fatalf("%d lines, want 40:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(buf.String(), `"msg"="Debug line" "worker"=7`) || !strings.Contains(buf.String(), "raw 13") {
		t.Errorf("a line is missing:\n%s", buf.String())
	}
}
