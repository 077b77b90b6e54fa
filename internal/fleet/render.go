package fleet

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// Ago is a duration as kubectl prints ages: 45s, 5m, 3h12m, 29d.
func Ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return duration.HumanDuration(d)
}

// When is t relative to now, "5m ago" or "in 29d", and "-" for no time.
func When(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	if d := t.Sub(now); d > 0 {
		return "in " + Ago(d)
	}
	return Ago(now.Sub(*t)) + " ago"
}

// View says how names are shown: with a NAMESPACE column for every namespace, else by name
// alone in Namespace and as namespace/name elsewhere.
type View struct {
	AllNamespaces bool
	Namespace     string
}

func (v View) name(ns, name string) string {
	if v.AllNamespaces || ns == v.Namespace {
		return name
	}
	return ns + "/" + name
}

// WriteStatus prints the summary as three tables: policies, their keys, cameras. Problems come
// first in each, as Summarize sorted them.
func WriteStatus(w io.Writer, s Summary, v View) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	now := s.Time
	row := func(ns string, cells ...string) {
		if v.AllNamespaces {
			cells = append([]string{ns}, cells...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	header := func(cells ...string) {
		if v.AllNamespaces {
			cells = append([]string{"NAMESPACE"}, cells...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}

	if len(s.Policies) == 0 {
		fmt.Fprintln(tw, "No token policies.")
	} else {
		header("POLICY", "READY", "ACTIVE KEY", "AGENTS", "LAGGING", "LAST ROTATION", "NEXT ROTATION", "PROBLEM")
		for _, p := range s.Policies {
			row(p.Namespace, v.name(p.Namespace, p.Name), p.Ready, dash(ShortKeyID(p.ActiveKeyID)), dash(p.Agents), nodes(p.LaggingNodes),
				When(p.LastRotation, now), When(p.NextRotation, now), problems(p.Problems))
		}
		fmt.Fprintln(tw)
		header("POLICY", "KEY", "STATE", "AGE", "NEXT", "AGENTS", "LAGGING")
		for _, p := range s.Policies {
			for _, k := range p.Keys {
				row(p.Namespace, v.name(p.Namespace, p.Name), ShortKeyID(k.KeyID), k.State, Ago(now.Sub(k.Created)), next(k, now), dash(k.Agents), nodes(k.LaggingNodes))
			}
		}
	}
	fmt.Fprintln(tw)
	if len(s.Cameras) == 0 {
		fmt.Fprintln(tw, "No cameras.")
	} else {
		header("CAMERA", "NODE", "SOURCE", "FPS", "LAST FRAME", "LAST MOTION", "READY", "PROBLEM")
		for _, c := range s.Cameras {
			ready := c.Ready
			if c.Suspended {
				ready = "Suspended"
			}
			row(c.Namespace, v.name(c.Namespace, c.Name), c.Node, c.Source, dash(c.FPS), When(c.LastFrame, now), When(c.LastMotion, now), ready, problems(c.Problems))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// An empty last cell leaves the padding of the one before it; trailing blanks only get in
	// the way of a reader's diff or grep.
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \n")
		if strings.HasSuffix(l, "\n") {
			lines[i] += "\n"
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

// next says what a key does next and when.
func next(k KeySummary, now time.Time) string {
	if k.Next == nil {
		return "-"
	}
	verb := map[string]string{"Active": "replaced", "Pending": "signs", "Retiring": "removed"}[k.State]
	if k.State == "Pending" && !k.Next.After(now) {
		// Its time has come; it waits for the agents (or for maxActivationWait).
		return "signs when agents load it"
	}
	return verb + " " + When(k.Next, now)
}

func problems(ps []Problem) string {
	if len(ps) == 0 {
		return ""
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, "; ")
}

func nodes(n []string) string {
	if len(n) == 0 {
		return "-"
	}
	return strings.Join(n, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
