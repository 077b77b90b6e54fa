// Package cli gives every camfleet binary the same command-line behaviour: --help prints the
// flags, --version prints the version, and a bad flag fails fast with one clear line.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/camfleet/camfleet/internal/cli.Version=v0.1.0".
var Version = "v0.0.0-dev"

// Parse parses args into fs, which must use flag.ContinueOnError. It exits 0 after printing
// help or the version, and exits 2 with a single line naming the problem on a bad flag.
func Parse(fs *flag.FlagSet, summary string, args []string) {
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fmt.Fprintf(os.Stdout, "%s\n\nUsage: %s [flags]\n\nFlags:\n", summary, fs.Name())
		fs.PrintDefaults()
		os.Exit(0)
	case err != nil:
		Fail(fs.Name(), fmt.Errorf("%w (see --help)", err))
	case fs.NArg() > 0:
		Fail(fs.Name(), fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	case *showVersion:
		fmt.Printf("%s %s\n", fs.Name(), Version)
		os.Exit(0)
	}
}

// Fail prints "name: err" on one line to stderr and exits 2.
func Fail(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(2)
}

// ParsePolicy reads a --default-token-policy style flag: "namespace/name" for one policy
// governing every Camera that names none, or a bare "name" for the policy of that name in each
// Camera's own namespace (the namespace's default). Empty means no default.
func ParsePolicy(flagName, s string) (types.NamespacedName, error) {
	if s == "" {
		return types.NamespacedName{}, nil
	}
	ns, n, ok := strings.Cut(s, "/")
	if !ok {
		ns, n = "", s
	}
	if (ok && ns == "") || n == "" || strings.Contains(n, "/") {
		return types.NamespacedName{}, fmt.Errorf("--%s %q: want namespace/name, or a name for each namespace's policy of that name", flagName, s)
	}
	return types.NamespacedName{Namespace: ns, Name: n}, nil
}

// Probe GETs url and says why it is not a 200: the helm test of a chart whose images hold no
// curl.
func Probe(url string) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: answered %s", url, resp.Status)
	}
	return nil
}
