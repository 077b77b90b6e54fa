package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// httpClient talks to agents and the token service. It bounds connecting and waiting for an
// answer, not reading one: an event stream or an MJPEG stream runs as long as the user wants.
var httpClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 30 * time.Second,
}}

// cameraFlags are the flags every command that reaches a camera's agent takes.
type cameraFlags struct {
	credentials
	agentURL string
}

func (f *cameraFlags) add(cmd *cobra.Command, o *options) {
	cmd.Flags().StringVar(&f.token, "token", "", "access token to send the agent; - reads it from stdin (default $CAMFLEET_TOKEN when no other credential is given)")
	f.addLoginFlags(cmd, o)
	cmd.Flags().StringVar(&f.agentURL, "agent-url", "", "reach the agent here instead of at the camera's status.endpoint, such as http://localhost:8090 through kubectl port-forward")
	cmd.ValidArgsFunction = completeOneName(o, &camv1.CameraList{})
}

func (f *cameraFlags) check() error {
	n := 0
	for _, set := range []bool{f.token != "", f.accessToken != "", f.username != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return usagef("give one of --token, --access-token and --username")
	}
	if f.agentURL != "" {
		if u, err := url.Parse(f.agentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--agent-url %q: want an http or https URL such as http://localhost:8090", f.agentURL)
		}
	}
	return nil
}

// cameraTarget is a camera's API on its agent, and the token to call it with.
type cameraTarget struct {
	cam *camv1.Camera
	// base is the camera's API on the agent, ending in "/": status.endpoint, or the same path
	// under --agent-url.
	base  string
	token string
}

func (t *cameraTarget) key() string { return t.cam.Namespace + "/" + t.cam.Name }

// getCamera reads a camera by name (or namespace/name) in namespace ns.
func (o *options) getCamera(ctx context.Context, name, ns string) (*camv1.Camera, error) {
	c, err := o.kube()
	if err != nil {
		return nil, err
	}
	key, err := objectKey(name, ns, "camera")
	if err != nil {
		return nil, err
	}
	var cam camv1.Camera
	if err := c.Get(ctx, key, &cam); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("camera %s not found in namespace %s", key.Name, key.Namespace)
		}
		return nil, o.apiError(err)
	}
	return &cam, nil
}

// target finds the camera's agent from the endpoint the agent publishes in the Camera's
// status, and gets the token to call it with.
func (o *options) target(ctx context.Context, name string, f cameraFlags) (*cameraTarget, error) {
	ns, _, err := o.namespace()
	if err != nil {
		return nil, err
	}
	cam, err := o.getCamera(ctx, name, ns)
	if err != nil {
		return nil, err
	}
	t := &cameraTarget{cam: cam, base: cam.Status.Endpoint}
	if t.base == "" {
		why := "no agent has reported on it yet"
		if c := meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
			why += " (" + c.Reason + ": " + c.Message + ")"
		}
		return nil, fmt.Errorf("camera %s has no endpoint: %s", t.key(), why)
	}
	if !strings.HasSuffix(t.base, "/") {
		t.base += "/"
	}
	if f.agentURL != "" {
		u, err := url.Parse(t.base)
		if err != nil {
			return nil, fmt.Errorf("camera %s: status.endpoint %q is not a URL", t.key(), t.base)
		}
		t.base = strings.TrimSuffix(f.agentURL, "/") + u.EscapedPath()
	}
	if t.token, err = o.cameraToken(ctx, cam, f.credentials); err != nil {
		return nil, err
	}
	return t, nil
}

// cameraToken is the token for a camera: given, an AccessToken's, or a login at the policy
// that governs the camera.
func (o *options) cameraToken(ctx context.Context, cam *camv1.Camera, cr credentials) (string, error) {
	switch {
	case cr.token == "-":
		line, _ := bufio.NewReader(o.streams.In).ReadString('\n')
		tok := strings.TrimSpace(line)
		if tok == "" {
			return "", usagef("--token -: no token on stdin")
		}
		return tok, nil
	case cr.token != "":
		return cr.token, nil
	case cr.accessToken != "":
		got, err := o.accessToken(ctx, cr.accessToken)
		return got.AccessToken, err
	case cr.username == "" && os.Getenv("CAMFLEET_TOKEN") != "":
		// Read here, not as the flag's default, so --help never prints a token.
		return strings.TrimSpace(os.Getenv("CAMFLEET_TOKEN")), nil
	}
	if cr.username == "" && !isTerminal(o.streams.In) {
		return "", usagef("no token: give --token, --access-token, or --username to log in")
	}
	key, err := governingPolicy(cam)
	if err != nil {
		return "", err
	}
	p, err := o.getPolicy(ctx, key)
	if err != nil {
		return "", err
	}
	got, err := o.login(ctx, p, cr)
	return got.AccessToken, err
}

// get calls the camera's API at path with the token in the Authorization header and returns
// the answer when it is 200; otherwise the error says in one line what the agent said.
func (t *cameraTarget) get(ctx context.Context, path, token string) (*http.Response, error) {
	u := t.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", t.key(), err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the agent at %s: %s", origin(u), netReason(err))
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, agentError(resp, u, t.key())
}

// agentRefusal is an agent's answer other than 200, said in one line.
type agentRefusal struct {
	status int
	msg    string
}

func (e *agentRefusal) Error() string { return e.msg }

// agentError says what an agent's refusal means. Its 401 never says why (by design), so the
// message points at verify, which can.
func agentError(resp *http.Response, u, camera string) error {
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&body)
	e := &agentRefusal{status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		e.msg = fmt.Sprintf("token refused: the agent at %s answered 401 for camera %s (kubectl camfleet verify TOKEN --camera %s says why)", origin(u), camera, camera)
	case resp.StatusCode == http.StatusNotFound && body.Error != "":
		e.msg = fmt.Sprintf("the agent at %s does not serve camera %s: %s", origin(u), camera, body.Error)
	default:
		msg := body.Error
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.msg = fmt.Sprintf("the agent at %s answered %d for camera %s: %s", origin(u), resp.StatusCode, camera, msg)
	}
	return e
}
