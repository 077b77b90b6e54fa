package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

func newStreamCommand(o *options) *cobra.Command {
	var f cameraFlags
	var open bool
	cmd := &cobra.Command{
		Use:   "stream CAMERA",
		Short: "Print (or open in a browser) a camera's MJPEG stream URL",
		Long: `Check that the camera's agent serves its MJPEG stream with the token, then print the
stream's URL. A browser cannot send an Authorization header, so when the camera's policy allows
tokens in the URL (spec.tokens.allowQueryToken) the URL carries the token as ?access_token=
and works as it is in a browser, VLC or ffplay; --open opens it in the browser ($BROWSER, else
the desktop's default). Otherwise the URL is printed bare, to be fetched with the token in an
Authorization header.

The printed URL may hold the token: treat it as the token itself. The agent never logs it.`,
		Example: `  # Watch the porch camera in the browser
  kubectl camfleet stream porch --username alice --open

  # Play it with ffplay when the policy allows tokens in the URL
  ffplay "$(kubectl camfleet stream porch --token "$TOKEN")"`,
		Args: exactlyOne("camera"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			return o.stream(cmd.Context(), args[0], open, f)
		},
	}
	f.add(cmd, o)
	cmd.Flags().BoolVar(&open, "open", false, "open the stream in the browser ($BROWSER, else the desktop's default)")
	return cmd
}

func (o *options) stream(ctx context.Context, camera string, open bool, f cameraFlags) error {
	t, err := o.target(ctx, camera, f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	withToken := "stream.mjpeg?" + url.Values{"access_token": {t.token}}.Encode()
	// The only reliable answer to "does this policy take tokens in the URL" is the agent's.
	queryOK := false
	if resp, err := t.get(ctx, withToken, ""); err == nil {
		resp.Body.Close()
		queryOK = true
	} else if refusal := (*agentRefusal)(nil); !errors.As(err, &refusal) || refusal.status != http.StatusUnauthorized {
		return err
	}
	if !queryOK {
		resp, err := t.get(ctx, "stream.mjpeg", t.token)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	if !queryOK {
		if open {
			return fmt.Errorf("camera %s's policy does not take tokens in the URL (spec.tokens.allowQueryToken), so a browser cannot authenticate to its stream", t.key())
		}
		fmt.Fprintln(o.streams.Out, t.base+"stream.mjpeg")
		fmt.Fprintf(o.streams.ErrOut, "The policy of camera %s takes the token only in a header: curl -H \"Authorization: Bearer $TOKEN\" %s\n", t.key(), t.base+"stream.mjpeg")
		return nil
	}
	link := t.base + withToken
	if open {
		if err := openBrowser(link); err != nil {
			return err
		}
		fmt.Fprintf(o.streams.ErrOut, "Opened the stream of camera %s in the browser\n", t.key())
		return nil
	}
	_, err = fmt.Fprintln(o.streams.Out, link)
	return err
}

// openBrowser starts the user's browser on link and leaves it running.
func openBrowser(link string) error {
	var cmd *exec.Cmd
	switch b := os.Getenv("BROWSER"); {
	case b != "":
		cmd = exec.Command(b, link)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", link)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", link)
	default:
		cmd = exec.Command("xdg-open", link)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("no browser to open: %s is not installed (set $BROWSER, or run without --open to print the URL)", cmd.Path)
		}
		return fmt.Errorf("open the browser: %w", err)
	}
	return cmd.Process.Release()
}
