package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeconfigError says in a line what is wrong with the kubeconfig, the most common reason a
// command cannot start.
func kubeconfigError(err error) error {
	switch {
	case clientcmd.IsEmptyConfig(err):
		return errors.New("no cluster configured: no kubeconfig found (set KUBECONFIG or pass --kubeconfig)")
	case errors.Is(err, fs.ErrNotExist):
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("kubeconfig %s does not exist", pe.Path)
		}
	}
	return fmt.Errorf("kubeconfig: %w", err)
}

// apiError turns a failed API request into one line a person can act on. Errors the caller
// expects (a 404 it reports by name) are handled before this.
func (o *options) apiError(err error) error {
	host := "the Kubernetes API server"
	if o.restConfig != nil {
		host += " at " + o.restConfig.Host
	}
	var ue *url.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case meta.IsNoMatchError(err):
		return errors.New("camfleet is not installed in this cluster: the API server does not serve cameras.camfleet.io (apply camfleet's CRDs, or check --context)")
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s refused your credentials (401): log in again or check the kubeconfig's user", host)
	case apierrors.IsForbidden(err), apierrors.IsNotFound(err):
		return errors.New(apiMessage(err))
	case errors.As(err, &ue):
		return fmt.Errorf("cannot reach %s: %s", host, netReason(err))
	}
	return err
}

// apiMessage is the API server's own message, which already names the object and the verb.
func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

// netReason is why a connection failed, without Go's chain of operations and addresses: the
// caller says what it tried to reach.
func netReason(err error) string {
	var dns *net.DNSError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return "cannot resolve " + dns.Name
	case errors.As(err, &unknownAuthority):
		return "its TLS certificate is signed by an unknown authority"
	case errors.As(err, &hostname):
		return "its TLS certificate is not valid for that name"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
