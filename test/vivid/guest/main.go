//go:build linux && cgo

// Command guest is what test/vivid runs inside its VM, as the child of a busybox /init that has
// loaded the vivid module. It runs an agent camera on vivid's /dev/video0 as the node agent
// builds one (camera.New with a V4L2 source in YUYV), drives vivid through its controls (a
// square in the picture for motion, the Disconnect button for an unplug), removes and loads the
// module again (a camera plugged back in), and reports each step on its own serial port
// (vivid.Port) for the host test to judge; it judges nothing itself.
//
// It must be linked statically (the VM has no libc):
//
//	CGO_ENABLED=1 go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/vladimirvivien/go4vl/v4l2"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/agent/camera"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/test/vivid"
)

const (
	device        = "/dev/video0"
	width, height = 640, 480
	// phaseFrames is how many frames each phase waits for: enough for a measured frame rate
	// and a settled motion background, few enough for an emulated CPU.
	phaseFrames = 30
	// stepTimeout bounds every wait, so that a stuck step is reported as such rather than
	// ending in the host's timeout with nothing said.
	stepTimeout = 60 * time.Second
)

func main() {
	out, err := os.OpenFile(vivid.Port, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest: open the report port: %v\n", err)
		os.Exit(2)
	}
	r := &reporter{out: out}
	if err := run(r); err != nil {
		r.send(vivid.StepFailed, r.stats(), err)
		os.Exit(1)
	}
}

func run(r *reporter) error {
	if err := awaitDevice(); err != nil {
		return err
	}
	ctl, err := openControls(device)
	if err != nil {
		return err
	}
	defer ctl.close()
	// vivid prints a clock and a frame counter into the picture by default; without them the
	// picture is still, so a motion event can only come from the square drawn later.
	if err := ctl.setMenu("OSD Text Mode", "None"); err != nil {
		return err
	}

	spec := camv1.CameraSpec{
		Source: camv1.CameraSource{Type: camv1.SourceV4L2, Width: width, Height: height, FPS: 15,
			V4L2: &camv1.V4L2Source{Device: device, PixelFormat: camv1.PixelFormatYUYV}},
		// A short gap ends the square's event soon after the square goes.
		Motion: camv1.MotionSpec{EventGap: &metav1.Duration{Duration: time.Second}},
		Stream: camv1.StreamSpec{MaxClients: 1},
	}
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, "agent:", prefix, args) }, funcr.Options{})
	cam := camera.New(types.NamespacedName{Namespace: "vivid", Name: "video0"}, spec, clock.RealClock{}, log,
		camera.Hooks{Changed: r.changed})
	r.cam = cam
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cam.Start(ctx)
	defer cam.Stop()

	s, err := await(cam, "frames and a measured rate", func(s camera.Stats) bool { return s.Frames >= phaseFrames && s.FPS > 0 })
	if err != nil {
		return err
	}
	r.send(vivid.StepCapturing, s, nil)

	if err := ctl.set("Show Square", 1); err != nil {
		return err
	}
	s, err = await(cam, "a motion event after the square appeared", func(s camera.Stats) bool { return s.MotionEvents > 0 })
	if err != nil {
		return err
	}
	r.send(vivid.StepMotion, s, nil)
	if err := ctl.set("Show Square", 0); err != nil {
		return err
	}

	if err := ctl.set("Disconnect", 0); err != nil {
		return err
	}
	s, err = await(cam, "the camera to notice the unplug", func(s camera.Stats) bool { return !s.Capturing.OK })
	if err != nil {
		return err
	}
	r.send(vivid.StepUnplugged, s, nil)
	ctl.close() // an open descriptor would keep the module from being removed

	if err := reload(); err != nil {
		return err
	}
	r.send(vivid.StepReplugged, cam.Stats(), nil)
	unplugged := s.Frames
	s, err = await(cam, "frames from the new device", func(s camera.Stats) bool {
		return s.Capturing.OK && s.Frames >= unplugged+phaseFrames
	})
	if err != nil {
		return err
	}
	r.send(vivid.StepRecovered, s, nil)

	cam.Stop()
	r.send(vivid.StepDone, cam.Stats(), nil)
	return nil
}

// await polls the camera until cond holds; the camera moves on its own goroutine.
func await(cam *camera.Camera, what string, cond func(camera.Stats) bool) (camera.Stats, error) {
	deadline := time.Now().Add(stepTimeout)
	for {
		s := cam.Stats()
		if cond(s) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("waited %s for %s", stepTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitDevice waits for the device node, which devtmpfs adds when the module has loaded.
func awaitDevice() error {
	deadline := time.Now().Add(stepTimeout)
	for {
		_, err := os.Stat(device)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %w", stepTimeout, device, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reload removes the vivid module, whose devices then vanish as an unplugged USB camera's do,
// and loads it again: a camera plugged back in, under the same device name.
func reload() error {
	deadline := time.Now().Add(stepTimeout)
	for {
		// The camera, retrying, may hold the device open for a moment, which makes removal fail.
		out, err := exec.Command("rmmod", "vivid").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rmmod vivid: %w: %s", err, strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command("modprobe", "vivid").CombinedOutput(); err != nil {
		return fmt.Errorf("modprobe vivid: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return awaitDevice()
}

// controls are a device's V4L2 controls, found by name: vivid's own controls have ids that
// are not in the kernel's UAPI headers.
type controls struct {
	path   string
	fd     uintptr
	open   bool
	byName map[string]v4l2.Control
}

func openControls(path string) (*controls, error) {
	fd, err := v4l2.OpenDevice(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for its controls: %w", path, err)
	}
	c := &controls{path: path, fd: fd, open: true, byName: map[string]v4l2.Control{}}
	all, err := v4l2.QueryAllControls(fd)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("list the controls of %s: %w", path, err)
	}
	for _, ctrl := range all {
		c.byName[ctrl.Name] = ctrl
	}
	return c, nil
}

func (c *controls) find(name string) (v4l2.Control, error) {
	ctrl, ok := c.byName[name]
	if !ok {
		names := make([]string, 0, len(c.byName))
		for n := range c.byName {
			names = append(names, n)
		}
		slices.Sort(names)
		return ctrl, fmt.Errorf("%s has no control %q; it has %q", c.path, name, names)
	}
	return ctrl, nil
}

// set sets a control; a button (vivid's Disconnect) is pressed by setting it to 0.
func (c *controls) set(name string, value int32) error {
	ctrl, err := c.find(name)
	if err != nil {
		return err
	}
	if err := v4l2.SetControlValue(c.fd, ctrl.ID, value); err != nil {
		return fmt.Errorf("set %s of %s to %d: %w", name, c.path, value, err)
	}
	return nil
}

// setMenu chooses a menu control's item by its name.
func (c *controls) setMenu(name, item string) error {
	ctrl, err := c.find(name)
	if err != nil {
		return err
	}
	items, err := ctrl.GetMenuItems()
	if err != nil {
		return fmt.Errorf("list the items of %s of %s: %w", name, c.path, err)
	}
	for _, it := range items {
		if it.Name == item {
			return c.set(name, int32(it.Index))
		}
	}
	return fmt.Errorf("%s of %s has no item %q (it has %+v)", name, c.path, item, items)
}

func (c *controls) close() {
	if c.open {
		_ = v4l2.CloseDevice(c.fd)
		c.open = false
	}
}

// reporter writes the report's lines and remembers the conditions last reported.
type reporter struct {
	out               *os.File
	mu                sync.Mutex
	cam               *camera.Camera
	capturing, motion camera.Condition
}

func (r *reporter) stats() camera.Stats {
	if r.cam == nil {
		return camera.Stats{}
	}
	return r.cam.Stats()
}

// changed reports the camera's conditions whenever one changes: the host reads from these
// lines what the camera said between the steps, such as why capture stopped.
func (r *reporter) changed() {
	s := r.cam.Stats()
	r.mu.Lock()
	same := s.Capturing == r.capturing && s.Motion == r.motion
	r.capturing, r.motion = s.Capturing, s.Motion
	r.mu.Unlock()
	if !same {
		r.send(vivid.StepCondition, s, nil)
	}
}

func (r *reporter) send(step string, s camera.Stats, err error) {
	rep := vivid.Report{Step: step, Stats: s}
	if err != nil {
		rep.Error = err.Error()
	}
	line, merr := json.Marshal(rep)
	if merr != nil {
		line, _ = json.Marshal(vivid.Report{Step: vivid.StepFailed, Error: errors.Join(merr, err).Error()})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.out.Write(append(append([]byte(vivid.Prefix), line...), '\n'))
}
