package testkit

import (
	"context"
	"sync"
	"testing"
)

// Run starts a component (a manager, an agent) with a context of its own until the test ends,
// or until the stop it returns is called, which waits for it to return. An error it returns
// fails the test.
func Run(t testing.TB, start func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
