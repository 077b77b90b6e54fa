package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// maxSnapshot bounds a snapshot read into memory: a 4096x3072 JPEG is a few MiB.
const maxSnapshot = 32 << 20

func newSnapshotCommand(o *options) *cobra.Command {
	var f cameraFlags
	var output string
	cmd := &cobra.Command{
		Use:   "snapshot CAMERA -o FILE",
		Short: "Save a camera's latest frame as a JPEG",
		Long: `Fetch the camera's latest frame from its agent, found at the endpoint the agent publishes
in the Camera's status, and write it to FILE (- or a redirected stdout writes it to stdout).

The agent needs a token granting camera:snapshot on the camera: --token, --access-token, or
--username to log in at the policy that governs the camera.`,
		Example: `  # Log in as alice (asked for the password) and save the porch camera's frame
  kubectl camfleet snapshot porch --username alice -o porch.jpg

  # With a token from an earlier login
  kubectl camfleet snapshot porch --token "$TOKEN" -o - > porch.jpg`,
		Args: exactlyOne("camera"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if output == "" {
				if isTerminal(o.streams.Out) {
					return usagef("give -o FILE (a JPEG is not for the terminal), or redirect stdout")
				}
				output = "-"
			}
			return o.snapshot(cmd.Context(), args[0], output, f)
		},
	}
	f.add(cmd, o)
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write the JPEG to; - for stdout")
	_ = cmd.MarkFlagFilename("output", "jpg", "jpeg")
	return cmd
}

func (o *options) snapshot(ctx context.Context, camera, output string, f cameraFlags) error {
	t, err := o.target(ctx, camera, f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := t.get(ctx, "snapshot.jpg", t.token)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshot+1))
	if err != nil {
		return fmt.Errorf("read the snapshot of camera %s from %s: %s", t.key(), origin(t.base), netReason(err))
	}
	if len(b) > maxSnapshot || !bytes.HasPrefix(b, []byte{0xff, 0xd8}) {
		return fmt.Errorf("the agent at %s answered camera %s's snapshot with something that is not a JPEG (%s)", origin(t.base), t.key(), resp.Header.Get("Content-Type"))
	}
	if output == "-" {
		_, err := o.streams.Out.Write(b)
		return err
	}
	if err := writeFileAtomic(output, b); err != nil {
		return err
	}
	taken := ""
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		taken = ", taken " + lm.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(o.streams.Out, "camera %s: wrote %d bytes to %s%s\n", t.key(), len(b), output, taken)
	return nil
}

// writeFileAtomic writes through a temporary file in the same directory, so an interrupted
// run never leaves half a JPEG under the name asked for.
func writeFileAtomic(name string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".snapshot-*.jpg")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
