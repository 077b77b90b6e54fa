package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/camfleet/camfleet/internal/testkit"
)

// clip renders n gray 160x120 frames with a bright square crossing frames [from, to).
func clip(t *testing.T, n, from, to int) [][]byte {
	t.Helper()
	var frames [][]byte
	for i := 0; i < n; i++ {
		img := image.NewGray(image.Rect(0, 0, 160, 120))
		for p := range img.Pix {
			img.Pix[p] = uint8(60 + p%23)
		}
		if i >= from && i < to {
			x0 := 10 + 3*(i-from)
			for y := 40; y < 70; y++ {
				for x := x0; x < x0+30; x++ {
					img.Pix[y*160+x] = 240
				}
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, buf.Bytes())
	}
	return frames
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	frames := clip(t, 60, 10, 30)
	// One broken frame in the middle: reported and skipped.
	frames[20] = frames[20][:len(frames[20])/2]
	path := filepath.Join(dir, "clip.mjpeg")
	if err := os.WriteFile(path, bytes.Join(frames, []byte("\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	summary := regexp.MustCompile(`frames=60 errors=1 events=1 .* fps=[0-9.]+ cpu=[0-9.]+s cpu-per-frame=[0-9.]+ms`)
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     *regexp.Regexp
		stderr     *regexp.Regexp
		stderrLine bool // stderr must be exactly one line
	}{
		{"events", []string{"--event-gap", "5", path}, 0, regexp.MustCompile(`^event start=10 end=29 frames=20 peak=\d+ peak-area=\d+ box=\d+,\d+,\d+,\d+\n$`), summary, false},
		{"frames", []string{"-print", "frames", "--event-gap", "5", path}, 0, regexp.MustCompile(`(?s)^frame=0 area=0 .*reset=true.*frame=12 area=\d+ .*event=start.*event start=10 end=29`), summary, false},
		{"mask hides it", []string{"--event-gap", "5", "--mask", "0,250,1000,400", path}, 0, regexp.MustCompile(`^$`), regexp.MustCompile(`events=0`), false},
		{"help", []string{"--help"}, 0, regexp.MustCompile(`(?s)Usage: camfleet-motion.*-threshold`), regexp.MustCompile(`^$`), false},
		{"version", []string{"--version"}, 0, regexp.MustCompile(`^camfleet-motion v0\.0\.0-dev\n$`), regexp.MustCompile(`^$`), false},
		{"bad flag", []string{"--thresold", "3", path}, 2, regexp.MustCompile(`^$`), regexp.MustCompile(`^camfleet-motion: flag provided but not defined: -thresold \(see --help\)\n$`), true},
		{"bad mask", []string{"--mask", "1,2,3", path}, 2, regexp.MustCompile(`^$`), regexp.MustCompile(`want x,y,width,height`), true},
		{"bad setting", []string{"--threshold", "0", path}, 2, regexp.MustCompile(`^$`), regexp.MustCompile(`threshold 0 is out of range`), true},
		{"no source", nil, 2, regexp.MustCompile(`^$`), regexp.MustCompile(`want one SOURCE`), true},
		{"missing file", []string{filepath.Join(dir, "absent")}, 1, regexp.MustCompile(`^$`), regexp.MustCompile(`open MJPEG file`), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, stderr.String())
			}
			if !c.stdout.Match(stdout.Bytes()) {
				t.Errorf("stdout %q does not match %s", stdout.String(), c.stdout)
			}
			if !c.stderr.Match(stderr.Bytes()) {
				t.Errorf("stderr %q does not match %s", stderr.String(), c.stderr)
			}
			if c.stderrLine && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
		})
	}
}

// endless serves a multipart stream that never ends until the client goes.
func endless(t *testing.T, frames [][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		for i := 0; r.Context().Err() == nil; i++ {
			f := frames[i%len(frames)]
			if _, err := fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n", len(f), f); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSIGINTStopsCleanly runs the real binary on an endless HTTP stream and interrupts it
// once it has printed frames: it must exit 0 with its summary.
func TestSIGINTStopsCleanly(t *testing.T) {
	bin := testkit.Build(t, "", ".", "camfleet-motion")
	srv := endless(t, clip(t, 30, 5, 25))
	cmd := exec.CommandContext(context.Background(), bin, "-print", "frames", srv.URL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for i := 0; i < 50 && sc.Scan(); i++ {
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v; stderr: %s", err, stderr.String())
	}
	if !regexp.MustCompile(`frames=\d+ errors=0 .*cpu-per-frame=`).Match(stderr.Bytes()) {
		t.Fatalf("no summary after SIGINT: %q", stderr.String())
	}
}
