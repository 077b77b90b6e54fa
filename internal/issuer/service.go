package issuer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Service serves a token service Server on an address as a manager.Runnable. It runs on every
// replica, leader or not: any replica can sign, since the keys are read from the cluster.
type Service struct {
	Addr   string
	Server *Server
}

var _ manager.LeaderElectionRunnable = Service{}

// NeedLeaderElection is false: every replica serves logins.
func (Service) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then drains requests for up to five seconds.
func (s Service) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("token service listen on %s: %w", s.Addr, err)
	}
	srv := &http.Server{Handler: s.Server.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	s.Server.Log.Info("Serving the token service", "address", l.Addr().String())
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
