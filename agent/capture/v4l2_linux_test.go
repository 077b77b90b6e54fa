//go:build linux && cgo

package capture

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestV4L2OpenFailures(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "video0")
	if err := os.WriteFile(file, []byte("not a device"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cfg    Config
		reason Reason
	}{
		{"missing device", Config{Device: filepath.Join(dir, "video9")}, ReasonDeviceNotFound},
		{"a device that is not V4L2", Config{Device: "/dev/null"}, ReasonNotACamera},
		{"a regular file", Config{Device: file}, ReasonNotACamera},
		{"a directory", Config{Device: dir}, ReasonNotACamera},
		{"a format V4L2 capture does not do", Config{Device: "/dev/null", Format: "H264"}, ReasonFormatUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := V4L2{Config: c.cfg}.Run(context.Background(), func(Frame) { t.Error("delivered a frame") })
			if ReasonOf(err) != c.reason {
				t.Fatalf("Run returned %v, want %s", err, c.reason)
			}
		})
	}
}

// fakeDevice replays a script of dequeue results, then either fails its wait or waits for
// the context to end.
type fakeDevice struct {
	script   []fakeDequeue
	waitErr  error // after the script
	next     int
	requeued []uint32
	closed   int
}

type fakeDequeue struct {
	buf []byte
	err error
}

func (f *fakeDevice) wait(ctx context.Context) error {
	if f.next < len(f.script) {
		return nil
	}
	if f.waitErr != nil {
		return f.waitErr
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeDevice) dequeue() ([]byte, uint32, error) {
	s := f.script[f.next]
	index := uint32(f.next % 4)
	f.next++
	return s.buf, index, s.err
}

func (f *fakeDevice) requeue(index uint32) error {
	f.requeued = append(f.requeued, index)
	return nil
}

func (f *fakeDevice) close() error {
	f.closed++
	return nil
}

func TestV4L2LoopEndsWithAReasonInsteadOfPanicking(t *testing.T) {
	frame := func(n byte) []byte { return bytes.Repeat([]byte{n}, 16) }
	unplugged := fmt.Errorf("buffer dequeue: %w", syscall.ENODEV)
	cases := []struct {
		name     string
		dev      *fakeDevice
		cancel   bool // cancel after the first frame
		reason   Reason
		frames   int
		requeued int
	}{
		{"unplugged mid-stream", &fakeDevice{script: []fakeDequeue{{buf: frame(1)}, {buf: frame(2)}, {err: unplugged}}}, false, ReasonDisconnected, 2, 2},
		{"spurious wake-up and a bad buffer, then unplugged", &fakeDevice{script: []fakeDequeue{{err: syscall.EAGAIN}, {buf: frame(1)}, {buf: nil}, {buf: frame(2)}, {err: syscall.EIO}}}, false, ReasonDisconnected, 2, 3},
		{"the device stalls", &fakeDevice{script: []fakeDequeue{{buf: frame(1)}}, waitErr: Fail(ReasonStalled, "no frame")}, false, ReasonStalled, 1, 1},
		{"the device fails its wait", &fakeDevice{script: []fakeDequeue{{buf: frame(1)}}, waitErr: syscall.ENODEV}, false, ReasonDisconnected, 1, 1},
		{"cancelled", &fakeDevice{script: []fakeDequeue{{buf: frame(1)}}}, true, "", 1, 1},
	}
	tmpl := Frame{Format: FormatYUYV, Width: 4, Height: 2, Stride: 8}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			frames := 0
			err := runDevice(ctx, "/dev/video0", c.dev, tmpl, func(f Frame) {
				frames++
				if f.Format != tmpl.Format || f.Width != tmpl.Width || f.Height != tmpl.Height || f.Stride != tmpl.Stride || len(f.Data) != 16 || f.Captured.IsZero() {
					t.Errorf("frame %+v does not carry the negotiated format", f)
				}
				if c.cancel {
					cancel()
				}
			})
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("runDevice returned %v, want nil", err)
			case c.reason != "" && ReasonOf(err) != c.reason:
				t.Fatalf("runDevice returned %v, want %s", err, c.reason)
			}
			if frames != c.frames || len(c.dev.requeued) != c.requeued {
				t.Fatalf("%d frames delivered and %d buffers requeued, want %d and %d", frames, len(c.dev.requeued), c.frames, c.requeued)
			}
			if c.dev.closed != 1 {
				t.Fatalf("device closed %d times, want once", c.dev.closed)
			}
		})
	}
}

func TestFourCCString(t *testing.T) {
	if got := fourccString(0x56595559); got != "YUYV" {
		t.Fatalf("fourccString = %q, want YUYV", got)
	}
}
