package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
)

// credentials are the ways a command gets a token: given (--token), kept fresh by an
// AccessToken (--access-token), or a login at the token service (--username).
type credentials struct {
	token         string
	accessToken   string
	username      string
	passwordStdin bool
	serviceURL    string
}

// addLoginFlags adds the flags of a login and of an AccessToken, which `token` and the camera
// commands share.
func (cr *credentials) addLoginFlags(cmd *cobra.Command, o *options) {
	cmd.Flags().StringVar(&cr.accessToken, "access-token", "", "use the token the AccessToken of this name keeps fresh in its Secret")
	cmd.Flags().StringVar(&cr.username, "username", "", "log in at the token service as this user (the password is asked without echo, or read from stdin)")
	cmd.Flags().BoolVar(&cr.passwordStdin, "password-stdin", false, "read the password from the first line of stdin, even on a terminal")
	cmd.Flags().StringVar(&cr.serviceURL, "token-service-url", "",
		"base URL of the token service (default $CAMFLEET_TOKEN_SERVICE_URL, else found from the policy's issuer)")
	_ = cmd.RegisterFlagCompletionFunc("access-token", completeNames(o, &camv1.AccessTokenList{}))
}

// issued is a token the plugin obtained, with what is known of its lifetime.
type issued struct {
	Policy             string     `json:"policy"`
	AccessToken        string     `json:"accessToken"`
	AccessTokenExpiry  *time.Time `json:"accessTokenExpiry,omitempty"`
	RefreshToken       string     `json:"refreshToken,omitempty"`
	RefreshTokenExpiry *time.Time `json:"refreshTokenExpiry,omitempty"`
	// NonExpiring is true for an access token without exp, which only revocation ends.
	NonExpiring bool `json:"nonExpiring,omitempty"`
}

func newTokenCommand(o *options) *cobra.Command {
	var cr credentials
	var policy, camera, output string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Log in at the token service and print an access token, or print an AccessToken's token",
		Long: `Log in as a user of a TokenPolicy at the token service and print the access token, ready
for --token or an Authorization header. The password is asked on the terminal without echo,
or read from the first line of stdin when stdin is not a terminal (or with --password-stdin).

The policy is --policy, else the policy governing --camera, else the one policy of the
namespace. The token service is found from the policy's issuer (its OpenID Connect discovery
document); give --token-service-url when the issuer is not the token service.

With --access-token NAME it prints instead the token the controller keeps fresh for that
AccessToken (this reads its Secret, so you need read access to Secrets there).

-o json or -o yaml prints the access and refresh tokens with their expiry.`,
		Example: `  # Log in as alice at the namespace's policy, and use the token
  TOKEN=$(kubectl camfleet token --username alice)
  kubectl camfleet snapshot porch --token "$TOKEN" -o porch.jpg

  # From a script: the password on stdin, both tokens as JSON
  echo "$PASSWORD" | kubectl camfleet token --policy home --username alice -o json

  # The token an AccessToken keeps fresh
  kubectl camfleet token --access-token cloud-worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFormat(output); err != nil {
				return err
			}
			if cr.accessToken != "" && (cr.username != "" || policy != "" || camera != "") {
				return usagef("--access-token reads a stored token: it goes without --username, --policy and --camera")
			}
			if policy != "" && camera != "" {
				return usagef("give --policy or --camera, not both")
			}
			ctx := cmd.Context()
			var got issued
			var err error
			if cr.accessToken != "" {
				got, err = o.accessToken(ctx, cr.accessToken)
			} else {
				var p *camv1.TokenPolicy
				if p, err = o.loginPolicy(ctx, policy, camera); err != nil {
					return err
				}
				got, err = o.login(ctx, p, cr)
			}
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(o.streams.Out, output, got)
			}
			_, err = fmt.Fprintln(o.streams.Out, got.AccessToken)
			return err
		},
	}
	cr.addLoginFlags(cmd, o)
	cmd.Flags().StringVar(&policy, "policy", "", "the TokenPolicy to log in at, NAME or NAMESPACE/NAME")
	cmd.Flags().StringVar(&camera, "camera", "", "log in at the policy governing this camera")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: the access token alone)")
	_ = cmd.RegisterFlagCompletionFunc("policy", completeNames(o, &camv1.TokenPolicyList{}))
	_ = cmd.RegisterFlagCompletionFunc("camera", completeNames(o, &camv1.CameraList{}))
	registerOutputCompletion(cmd, "json", "yaml")
	return cmd
}

// loginPolicy finds the policy to log in at: named, governing a camera, or the namespace's
// only one.
func (o *options) loginPolicy(ctx context.Context, policy, camera string) (*camv1.TokenPolicy, error) {
	c, err := o.kube()
	if err != nil {
		return nil, err
	}
	ns, _, err := o.namespace()
	if err != nil {
		return nil, err
	}
	var key types.NamespacedName
	switch {
	case policy != "":
		if key, err = objectKey(policy, ns, "token policy"); err != nil {
			return nil, err
		}
	case camera != "":
		cam, err := o.getCamera(ctx, camera, ns)
		if err != nil {
			return nil, err
		}
		if key, err = governingPolicy(cam); err != nil {
			return nil, err
		}
	default:
		var list camv1.TokenPolicyList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, o.apiError(err)
		}
		switch len(list.Items) {
		case 0:
			return nil, fmt.Errorf("no token policies in namespace %s: name one with --policy NAMESPACE/NAME", ns)
		case 1:
			return &list.Items[0], nil
		}
		names := make([]string, len(list.Items))
		for i, p := range list.Items {
			names[i] = p.Name
		}
		return nil, usagef("namespace %s has %d token policies (%s): name one with --policy", ns, len(names), strings.Join(names, ", "))
	}
	return o.getPolicy(ctx, key)
}

func (o *options) getPolicy(ctx context.Context, key types.NamespacedName) (*camv1.TokenPolicy, error) {
	c, err := o.kube()
	if err != nil {
		return nil, err
	}
	var p camv1.TokenPolicy
	if err := c.Get(ctx, key, &p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("token policy %s not found in namespace %s", key.Name, key.Namespace)
		}
		return nil, o.apiError(err)
	}
	return &p, nil
}

// governingPolicy is the policy a camera's agent verifies its tokens with: the controller's
// resolution in status, else the camera's own reference.
func governingPolicy(cam *camv1.Camera) (types.NamespacedName, error) {
	if key, ok := splitKey(cam.Status.TokenPolicy); ok {
		return key, nil
	}
	key := publication.GoverningPolicy(cam, types.NamespacedName{})
	if key.Name == "" {
		return key, fmt.Errorf("camera %s/%s names no token policy and the controller has not resolved its default yet", cam.Namespace, cam.Name)
	}
	return key, nil
}

// login logs in at the token service's OAuth 2.0 token endpoint (grant_type=password), the
// one its discovery document advertises.
func (o *options) login(ctx context.Context, p *camv1.TokenPolicy, cr credentials) (issued, error) {
	policy := p.Namespace + "/" + p.Name
	user, err := o.username(cr.username)
	if err != nil {
		return issued{}, err
	}
	endpoint, err := tokenEndpoint(ctx, p, cr.serviceURL)
	if err != nil {
		return issued{}, err
	}
	pass, err := o.password(user, cr.passwordStdin)
	if err != nil {
		return issued{}, err
	}
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return issued{}, fmt.Errorf("token endpoint %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := httpClient.Do(req)
	if err != nil {
		return issued{}, fmt.Errorf("cannot reach the token service at %s: %s", origin(endpoint), netReason(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return issued{}, loginError(resp, body, user, policy, endpoint)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return issued{}, fmt.Errorf("the token service at %s answered without an access token", origin(endpoint))
	}
	out := issued{Policy: policy, AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken}
	out.AccessTokenExpiry, out.NonExpiring = expiryOf(tr.AccessToken)
	out.RefreshTokenExpiry, _ = expiryOf(tr.RefreshToken)
	return out, nil
}

// loginError says why the token service refused a login, from its RFC 6749 error body.
func loginError(resp *http.Response, body []byte, user, policy, endpoint string) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := "later"
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			wait = fmt.Sprintf("in %ds", s)
		}
		return fmt.Errorf("login refused: too many failed logins for %s at policy %s; try again %s", user, policy, wait)
	case e.Error == "invalid_grant":
		return fmt.Errorf("login refused: wrong user name or password for %s at policy %s", user, policy)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("the token service at %s does not serve policy %s (it may watch other namespaces)", origin(endpoint), policy)
	}
	msg := e.Description
	if msg == "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("the token service at %s answered %d: %s", origin(endpoint), resp.StatusCode, msg)
}

// tokenEndpoint is where to log in for p: under --token-service-url, or the token_endpoint of
// the discovery document at the policy's issuer (where the token service serves it).
func tokenEndpoint(ctx context.Context, p *camv1.TokenPolicy, serviceURL string) (string, error) {
	if serviceURL == "" {
		serviceURL = os.Getenv("CAMFLEET_TOKEN_SERVICE_URL")
	}
	if serviceURL != "" {
		u, err := url.Parse(serviceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", usagef("--token-service-url %q: want an http or https URL", serviceURL)
		}
		return strings.TrimSuffix(serviceURL, "/") + "/policies/" + p.Namespace + "/" + p.Name + "/token", nil
	}
	issuer := p.Status.Issuer
	if issuer == "" {
		return "", fmt.Errorf("policy %s/%s has no issuer in its status yet (is the controller running?)", p.Namespace, p.Name)
	}
	discovery := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discovery, nil)
	if err != nil {
		return "", fmt.Errorf("policy %s/%s's issuer %q is not a URL: pass --token-service-url", p.Namespace, p.Name, issuer)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the token service at the issuer %s: %s (pass --token-service-url if the issuer is not the token service)", issuer, netReason(err))
	}
	defer resp.Body.Close()
	var doc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc) != nil || doc.TokenEndpoint == "" {
		return "", fmt.Errorf("no token service at the issuer %s (its discovery document answered %d): pass --token-service-url", issuer, resp.StatusCode)
	}
	return doc.TokenEndpoint, nil
}

// expiryOf reads a token's exp without trusting it: the token service just issued it.
func expiryOf(raw string) (*time.Time, bool) {
	if raw == "" {
		return nil, false
	}
	u, err := token.ReadUnverified(raw)
	if err != nil {
		return nil, false
	}
	if u.Expiry.IsZero() {
		return nil, true
	}
	e := u.Expiry.UTC()
	return &e, false
}

// username is the login user: the flag, else asked on a terminal.
func (o *options) username(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if !isTerminal(o.streams.In) {
		return "", usagef("no user to log in as: give --username (or --access-token NAME for an AccessToken's token)")
	}
	fmt.Fprint(o.streams.ErrOut, "User: ")
	line, err := bufio.NewReader(o.streams.In).ReadString('\n')
	if user := strings.TrimSpace(line); user != "" {
		return user, nil
	}
	if err != nil {
		return "", fmt.Errorf("read the user name: %w", err)
	}
	return "", usagef("no user name given")
}

// password reads the password: without echo on a terminal, else the first line of stdin.
func (o *options) password(user string, fromStdin bool) (string, error) {
	if !fromStdin && isTerminal(o.streams.In) {
		fmt.Fprintf(o.streams.ErrOut, "Password for %s: ", user)
		b, err := term.ReadPassword(int(o.streams.In.(*os.File).Fd()))
		fmt.Fprintln(o.streams.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		if len(b) == 0 {
			return "", usagef("empty password")
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(o.streams.In).ReadString('\n')
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return "", usagef("no password on stdin (pipe it in, or run on a terminal to be asked)")
	}
	return pass, nil
}

// accessToken reads the token an AccessToken keeps fresh in its Secret.
func (o *options) accessToken(ctx context.Context, name string) (issued, error) {
	c, err := o.kube()
	if err != nil {
		return issued{}, err
	}
	ns, _, err := o.namespace()
	if err != nil {
		return issued{}, err
	}
	key, err := objectKey(name, ns, "access token")
	if err != nil {
		return issued{}, err
	}
	var at camv1.AccessToken
	if err := c.Get(ctx, key, &at); err != nil {
		if apierrors.IsNotFound(err) {
			return issued{}, fmt.Errorf("access token %s not found in namespace %s", key.Name, key.Namespace)
		}
		return issued{}, o.apiError(err)
	}
	notReady := func() error {
		msg := "the controller has not minted it yet"
		if c := meta.FindStatusCondition(at.Status.Conditions, camv1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
			msg = c.Reason + ": " + c.Message
		}
		return fmt.Errorf("access token %s/%s has no token: %s", key.Namespace, key.Name, msg)
	}
	var s corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: at.Spec.SecretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return issued{}, notReady()
		}
		return issued{}, o.apiError(err)
	}
	tok := string(s.Data["token"])
	if tok == "" {
		return issued{}, notReady()
	}
	out := issued{Policy: key.Namespace + "/" + at.Spec.PolicyName, AccessToken: tok}
	out.AccessTokenExpiry, out.NonExpiring = expiryOf(tok)
	return out, nil
}

// origin is the scheme and host of a URL, which is all an error about reaching it needs.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}
