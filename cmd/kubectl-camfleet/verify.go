package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/fleet"
	"github.com/camfleet/camfleet/internal/permission"
)

// verifyResult is verify's answer: the verifier's verdict and, with --camera, what the token
// may do on that camera.
type verifyResult struct {
	fleet.Verdict
	Camera        string   `json:"camera,omitempty"`
	CameraActions []string `json:"cameraActions,omitempty"`
}

func newVerifyCommand(o *options) *cobra.Command {
	var policy, camera, output string
	cmd := &cobra.Command{
		Use:   "verify TOKEN",
		Short: "Check a token offline against a policy's published keys and say which rule refuses it",
		Long: `Check a token with the same strict verifier the agents use, against the keys, revocations
and trusted issuers the TokenPolicy publishes in its status, and say which rule refuses it: the
verifier's reason code (as the agent counts it in camfleet_agent_auth_total) and a sentence
with the token's own claims. The agent answers every refused token with a bare 401, by design;
this is where to learn why. Nothing is sent to an agent or the token service.

The policy is --policy, else the one governing --camera, else the policy whose issuer signed
the token (searched in -n's namespace when given, else in every namespace you may read).
With --camera it also says which of the camera's actions the token grants.

TOKEN - (or no TOKEN with stdin not a terminal) reads the token from stdin, which keeps it out
of the shell history. The exit code is 0 for a valid token and 1 for a refused one.`,
		Example: `  # Why does the porch camera answer 401?
  kubectl camfleet verify "$TOKEN" --camera porch

  # A token from a file, against a named policy, as JSON
  kubectl camfleet verify - --policy cams/home -o json < token.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFormat(output); err != nil {
				return err
			}
			if policy != "" && camera != "" {
				return usagef("give --policy or --camera, not both")
			}
			raw, err := o.tokenArgument(args)
			if err != nil {
				return err
			}
			return o.verify(cmd.Context(), raw, policy, camera, output)
		},
	}
	cmd.Flags().StringVar(&policy, "policy", "", "check against this TokenPolicy, NAME or NAMESPACE/NAME")
	cmd.Flags().StringVar(&camera, "camera", "", "check against the policy governing this camera, and say what the token may do on it")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("policy", completeNames(o, &camv1.TokenPolicyList{}))
	_ = cmd.RegisterFlagCompletionFunc("camera", completeNames(o, &camv1.CameraList{}))
	registerOutputCompletion(cmd, "json", "yaml")
	return cmd
}

// tokenArgument is the token to check: the argument, or stdin for "-" or no argument.
func (o *options) tokenArgument(args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return strings.TrimSpace(args[0]), nil
	}
	if len(args) == 0 && isTerminal(o.streams.In) {
		return "", usagef("give the token to check, or - to read it from stdin")
	}
	line, err := bufio.NewReader(io.LimitReader(o.streams.In, 1<<20)).ReadString('\n')
	if tok := strings.TrimSpace(line); tok != "" {
		return tok, nil
	}
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the token from stdin: %w", err)
	}
	return "", usagef("no token on stdin")
}

func (o *options) verify(ctx context.Context, raw, policy, camera, output string) error {
	p, cam, err := o.verifyPolicy(ctx, raw, policy, camera)
	if err != nil {
		return err
	}
	v, err := fleet.Check(p, raw, time.Now())
	if err != nil {
		return err
	}
	res := verifyResult{Verdict: v}
	if cam != nil {
		res.Camera = cam.Namespace + "/" + cam.Name
		if v.Valid {
			res.CameraActions = cameraActions(v.Permissions, res.Camera)
		}
	}
	if output != "" {
		if err := printStructured(o.streams.Out, output, res); err != nil {
			return err
		}
	} else if err := writeVerdict(o.streams.Out, res); err != nil {
		return err
	}
	if !v.Valid {
		fmt.Fprintf(o.streams.ErrOut, "error: token refused by policy %s: %s\n", v.Policy, v.Reason)
		return silentError{code: exitFailure}
	}
	return nil
}

// verifyPolicy finds the policy to check against, and the camera when one was named.
func (o *options) verifyPolicy(ctx context.Context, raw, policy, camera string) (*camv1.TokenPolicy, *camv1.Camera, error) {
	ns, explicit, err := o.namespace()
	if err != nil {
		return nil, nil, err
	}
	switch {
	case policy != "":
		key, err := objectKey(policy, ns, "token policy")
		if err != nil {
			return nil, nil, err
		}
		p, err := o.getPolicy(ctx, key)
		return p, nil, err
	case camera != "":
		cam, err := o.getCamera(ctx, camera, ns)
		if err != nil {
			return nil, nil, err
		}
		key, err := governingPolicy(cam)
		if err != nil {
			return nil, nil, err
		}
		p, err := o.getPolicy(ctx, key)
		return p, cam, err
	}
	d := fleet.Decode(raw)
	if d.Token == nil || d.Token.Issuer == "" {
		return nil, nil, usagef("the token names no issuer to find its policy by: give --policy or --camera")
	}
	iss := d.Token.Issuer
	c, err := o.kube()
	if err != nil {
		return nil, nil, err
	}
	var list camv1.TokenPolicyList
	where := "any namespace"
	if explicit {
		err, where = c.List(ctx, &list, client.InNamespace(ns)), "namespace "+ns
	} else if err = c.List(ctx, &list); apierrors.IsForbidden(err) {
		// Not allowed to list every namespace: the current one is the next best place.
		err, where = c.List(ctx, &list, client.InNamespace(ns)), "namespace "+ns
	}
	if err != nil {
		return nil, nil, o.apiError(err)
	}
	var found []*camv1.TokenPolicy
	for i := range list.Items {
		if fleet.IssuedBy(&list.Items[i], iss) {
			found = append(found, &list.Items[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, nil, fmt.Errorf("no token policy in %s trusts the token's issuer %q: give --policy or --camera", where, iss)
	case 1:
		return found[0], nil, nil
	}
	names := make([]string, len(found))
	for i, p := range found {
		names[i] = p.Namespace + "/" + p.Name
	}
	return nil, nil, usagef("the token's issuer %q is trusted by %d policies (%s): give --policy", iss, len(found), strings.Join(names, ", "))
}

// cameraActions are the actions on a camera that permissions grant, as the agent checks them.
func cameraActions(perms []string, camera string) []string {
	set, err := permission.Compile(perms)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range []string{"snapshot", "stream", "events"} {
		if set.Allows("camera", a, camera) {
			out = append(out, a)
		}
	}
	if set.Allows("alert", "ack", camera) {
		out = append(out, "ack")
	}
	return out
}

// writeVerdict prints the verdict for a person: the answer, the rule, then what the token says.
func writeVerdict(w io.Writer, r verifyResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	v := r.Verdict
	if v.Valid {
		fmt.Fprintf(tw, "Result:\tvalid under policy %s\n", v.Policy)
	} else {
		fmt.Fprintf(tw, "Result:\trefused by policy %s\n", v.Policy)
		fmt.Fprintf(tw, "Rule:\t%s\n", v.Reason)
		fmt.Fprintf(tw, "Why:\t%s\n", v.Explanation)
	}
	if r.Camera != "" && v.Valid {
		actions := "nothing (the agent answers 403)"
		if len(r.CameraActions) > 0 {
			actions = strings.Join(r.CameraActions, ", ")
		}
		fmt.Fprintf(tw, "On camera %s:\t%s\n", r.Camera, actions)
	}
	h := v.Header
	str := func(m map[string]any, k string) string {
		if s, ok := m[k].(string); ok {
			return s
		}
		return ""
	}
	if h != nil {
		fmt.Fprintf(tw, "Key:\t%s (alg %s, typ %s)\n", dashed(str(h, "kid")), dashed(str(h, "alg")), dashed(str(h, "typ")))
	}
	if u := v.Token; u != nil {
		fmt.Fprintf(tw, "Subject:\t%s\n", dashed(u.Subject))
		fmt.Fprintf(tw, "Issuer:\t%s\n", dashed(u.Issuer))
		fmt.Fprintf(tw, "Audience:\t%s\n", dashed(strings.Join(u.Audience, ", ")))
		now := time.Now()
		for _, t := range []struct {
			name string
			at   time.Time
		}{{"Issued", u.IssuedAt}, {"Not before", u.NotBefore}, {"Expires", u.Expiry}} {
			if !t.at.IsZero() {
				at := t.at
				fmt.Fprintf(tw, "%s:\t%s (%s)\n", t.name, at.UTC().Format(time.RFC3339), fleet.When(&at, now))
			}
		}
		if u.Expiry.IsZero() {
			fmt.Fprintf(tw, "Expires:\tnever (no exp)\n")
		}
		fmt.Fprintf(tw, "Token ID:\t%s\n", dashed(u.ID))
		// A valid token grants what the policy says (for an external issuer, its roles'
		// permissions); a refused one only claims.
		label, perms := "Claims permissions:", append([]string(nil), u.Perms...)
		if v.Valid {
			label, perms = "Grants:", append([]string(nil), v.Permissions...)
		}
		sort.Strings(perms)
		fmt.Fprintf(tw, "%s\t%s\n", label, dashed(strings.Join(perms, " ")))
	}
	return tw.Flush()
}

func dashed(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
