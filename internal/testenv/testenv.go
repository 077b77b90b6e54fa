// Package testenv starts a real kube-apiserver and etcd (the versions hack/tools.sh builds)
// with camfleet's CRDs installed, for tests and for the local demo.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/camfleet/camfleet/internal/scheme"
)

// Env is a running control plane: an API server, etcd, an admin client, and a kubeconfig file
// that kubectl and helm can use.
type Env struct {
	Config     *rest.Config
	Client     client.Client
	Scheme     *runtime.Scheme
	Kubeconfig string
	AssetsDir  string
	RepoRoot   string

	env *envtest.Environment
	dir string
}

// RepoRoot finds the repository root by walking up from the working directory to go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// AssetsDir is where envtest finds kube-apiserver, etcd and kubectl: KUBEBUILDER_ASSETS when
// set, else the cache hack/tools.sh fills.
func AssetsDir(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join(root, "hack", "tools.sh"), "--print-assets").Output()
	if err != nil {
		return "", fmt.Errorf("ask hack/tools.sh for the envtest assets: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("no kube-apiserver in %s: run hack/tools.sh envtest (or make tools) first", dir)
	}
	return dir, nil
}

// Start starts the control plane with the CRDs from config/crd/bases and writes an admin
// kubeconfig into a temporary directory that Stop removes.
func Start() (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir(root)
	if err != nil {
		return nil, err
	}
	e := &Env{Scheme: scheme.New(), AssetsDir: assets, RepoRoot: root}
	e.env = &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   e.Scheme,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	if e.Config, err = e.env.Start(); err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", assets, err)
	}
	if err := e.finish(); err != nil {
		_ = e.env.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) finish() error {
	var err error
	if e.Client, err = client.New(e.Config, client.Options{Scheme: e.Scheme}); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if e.dir, err = os.MkdirTemp("", "camfleet-testenv-"); err != nil {
		return err
	}
	user, err := e.env.AddUser(envtest.User{Name: "camfleet-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	return os.WriteFile(e.Kubeconfig, kc, 0o600)
}

// Stop stops the control plane and removes the kubeconfig.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if e.dir != "" {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}

// EtcdURL is the client URL of the control plane's etcd, for a bench that must see a write
// when it commits rather than when the API server's watch fan-out reaches it.
func (e *Env) EtcdURL() string { return e.env.ControlPlane.Etcd.URL.String() }

// Kubectl is the path of the kubectl that matches the API server.
func (e *Env) Kubectl() string { return filepath.Join(e.AssetsDir, "kubectl") }

// CreateNamespace makes a namespace with a generated name, for one test.
func (e *Env) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{}
	ns.GenerateName = prefix + "-"
	if err := e.Client.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("create namespace: %w", err)
	}
	return ns.Name, nil
}
