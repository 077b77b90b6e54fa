package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/camfleet/camfleet/internal/issuer"
)

// tokenService runs the token service's HTTP server on every replica, leader or not: any
// replica can sign, since the keys are read from the cluster.
type tokenService struct {
	addr   string
	server *issuer.Server
}

var _ manager.LeaderElectionRunnable = tokenService{}

// NeedLeaderElection is false: every replica serves logins.
func (tokenService) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then drains requests for up to five seconds.
func (t tokenService) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("token service listen on %s: %w", t.addr, err)
	}
	srv := &http.Server{Handler: t.server.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	ctrl.Log.WithName("token-service").Info("Serving the token service", "address", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("token service: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("token service shutdown: %w", err)
		}
		return nil
	}
}
