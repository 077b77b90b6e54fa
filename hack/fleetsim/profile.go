package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// profileWindow is how long a rotation's profiles cover from the annotation: the key's
// publication and its fan-out to every agent, the part of a rotation with a target.
const profileWindow = 4 * time.Second

// profiler takes CPU profiles of this process (every agent) and of the API server over the
// first profileWindow of a rotation, to see where a rotation's time goes.
type profiler struct {
	dir string
	api *rest.Config
}

// start begins both profiles, named after the fleet size and the round; stop writes them.
func (p *profiler) start(ctx context.Context, name string) (stop func() error, err error) {
	if p == nil || p.dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	own, err := os.Create(filepath.Join(p.dir, name+"-agents.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(own); err != nil {
		own.Close()
		return nil, fmt.Errorf("profile the agents: %w", err)
	}
	api, agents := make(chan error, 1), make(chan error, 1)
	go func() { api <- p.apiServer(ctx, filepath.Join(p.dir, name+"-apiserver.pprof")) }()
	go func() {
		// The same window as the API server's, however long the rotation takes.
		time.Sleep(profileWindow)
		pprof.StopCPUProfile()
		agents <- own.Close()
	}()
	return func() error { return errors.Join(<-agents, <-api) }, nil
}

// apiServer saves the API server's own CPU profile of the next profileWindow.
func (p *profiler) apiServer(ctx context.Context, path string) error {
	hc, err := rest.HTTPClientFor(p.api)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(p.api.Host, "/"), int(profileWindow.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("profile the API server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile the API server: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
