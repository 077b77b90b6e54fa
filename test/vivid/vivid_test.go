//go:build linux && amd64

package vivid

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camfleet/camfleet/agent/capture"
	"github.com/camfleet/camfleet/internal/testkit"
)

// vmTimeout bounds the VM's whole run, which takes about 15 s on a quiet machine. The guest
// bounds each of its steps to a minute and says which one it gave up on.
const vmTimeout = 3 * time.Minute

// initScript is the VM's /init. The kernel hands it a console and nothing else mounted.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe vivid || echo "init: modprobe vivid failed"
/guest
echo "init: the guest exited with status $?"
poweroff -f
`

// TestV4L2CapturesFromVividInAVM runs an agent camera on the kernel's vivid virtual camera in
// a qemu VM: frames of the negotiated size arrive, motion detection runs on them and sees a
// square vivid draws, and an unplug (vivid's Disconnect button) turns the camera's Capturing
// condition false with reason Disconnected, after which the module is removed and loaded
// again and the same camera captures from the new device, with no crash in between.
func TestV4L2CapturesFromVividInAVM(t *testing.T) {
	// Not internal/testenv's RepoRoot: its envtest imports would double this test's build time.
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || !filepath.IsAbs(strings.TrimSpace(string(gomod))) {
		t.Fatalf("find the repository root with go env GOMOD: %v (%q)", err, gomod)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 is not installed: run make deps (hack/apt.sh installs qemu-system-x86)")
	}
	start := time.Now()
	assets := vmAssets(t, root)
	t.Logf("VM assets in %s (%s)", assets, time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	guest := buildGuest(t, root)
	t.Logf("Built the guest (%s)", time.Since(start).Round(100*time.Millisecond))
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := writeInitramfs(initrd, assets, guest); err != nil {
		t.Fatal(err)
	}

	var console testkit.LogBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("VM console:\n%s", console.String())
		}
	})
	reports, err := boot(t, qemu, assets, initrd, &console)
	if err != nil {
		t.Fatal(err)
	}
	judge(t, reports, console.String())
}

// vmAssets runs hack/vm.sh, which prepares the kernel, modules and busybox once and finds them
// in its cache afterwards, and returns their directory.
func vmAssets(t *testing.T, root string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(filepath.Join(root, "hack", "vm.sh"))
	cmd.Dir, cmd.Stderr = root, &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/vm.sh could not prepare the VM's kernel, modules and busybox: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// buildGuest builds ./guest statically, as the VM has no libc. The linker warns that glibc's
// name lookups need shared libraries at run time; the guest looks up no names. (The netgo and
// osusergo tags would silence it but recompile everything that imports net.)
func buildGuest(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "guest")
	cmd := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-s -w -linkmode external -extldflags -static", "./test/vivid/guest")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./test/vivid/guest: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("the guest is linked dynamically; the VM has no libc to run it")
		}
	}
	return bin
}

// boot runs the VM to its end and returns the guest's reports; the console goes to console.
func boot(t *testing.T, qemu, assets, initrd string, console io.Writer) ([]Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout)
	defer cancel()
	reportFile := filepath.Join(t.TempDir(), "reports")
	// Software emulation: CI machines have no /dev/kvm. -nodefaults drops the VGA card, NIC
	// and drives the kernel would otherwise probe. The first serial port is the kernel's
	// console, the second the guest's reports (Port).
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-nodefaults", "-display", "none",
		"-serial", "stdio", "-serial", "file:"+reportFile, "-no-reboot",
		"-kernel", filepath.Join(assets, "vmlinuz"), "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet")
	cmd.Stderr = console
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("qemu's stdout: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		_, _ = fmt.Fprintf(console, "%6.2fs %s\n", time.Since(start).Seconds(), strings.TrimRight(sc.Text(), "\r"))
	}
	err = cmd.Wait()
	t.Logf("The VM ran for %s", time.Since(start).Round(100*time.Millisecond))
	if ctx.Err() != nil {
		err = fmt.Errorf("the VM did not power off within %s", vmTimeout)
	} else if err != nil {
		err = fmt.Errorf("qemu: %w", err)
	}
	reports, rerr := readReports(reportFile, console)
	return reports, errors.Join(err, rerr)
}

// readReports parses the guest's report port, copying each line to the console log so that a
// failure shows the reports in order after the console.
func readReports(path string, console io.Writer) ([]Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the guest's reports: %w", err)
	}
	var reports []Report
	var bad []error
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		_, _ = fmt.Fprintf(console, "report: %s\n", line)
		rest, ok := strings.CutPrefix(line, Prefix)
		if !ok {
			bad = append(bad, fmt.Errorf("a report line without %q: %q", Prefix, line))
			continue
		}
		var r Report
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			bad = append(bad, fmt.Errorf("a garbled report line %q: %w", line, err))
			continue
		}
		reports = append(reports, r)
	}
	return reports, errors.Join(bad...)
}

// judge checks the guest's reports against what must hold.
func judge(t *testing.T, reports []Report, console string) {
	t.Helper()
	for _, crash := range []string{"panic:", "fatal error:", "SIGSEGV", "Kernel panic", "BUG:", "Oops"} {
		if strings.Contains(console, crash) {
			t.Errorf("the console shows a crash (%q)", crash)
		}
	}
	steps := map[string]Report{}
	// firstDown is the first report of capture stopping after the motion step (the guest
	// presses Disconnect next): it must name the unplug itself, not what a later retry met.
	var firstDown *Report
	for i, r := range reports {
		switch r.Step {
		case StepFailed:
			t.Fatalf("the guest failed: %s", r.Error)
		case StepCondition:
			if _, pressed := steps[StepMotion]; pressed && firstDown == nil && !r.Stats.Capturing.OK {
				firstDown = &reports[i]
			}
		default:
			steps[r.Step] = r
		}
	}
	for _, step := range []string{StepCapturing, StepMotion, StepUnplugged, StepReplugged, StepRecovered, StepDone} {
		if _, ok := steps[step]; !ok {
			t.Fatalf("the guest never reported %q; it reported %d lines", step, len(reports))
		}
	}

	c := steps[StepCapturing].Stats
	if c.Width != 640 || c.Height != 480 || c.Format != capture.FormatYUYV {
		t.Errorf("frames are %dx%d %s, want the negotiated 640x480 YUYV", c.Width, c.Height, c.Format)
	}
	if c.Frames < 30 || c.Dropped != 0 || c.FPS <= 0 {
		t.Errorf("capturing: %d frames, %d the detector refused, %.1f fps; want 30 or more, none refused, a rate", c.Frames, c.Dropped, c.FPS)
	}
	if !c.Capturing.OK || !c.Motion.OK || c.Motion.Reason != "Detecting" {
		t.Errorf("capturing: conditions Capturing %+v, Motion %+v; want both true, motion Detecting", c.Capturing, c.Motion)
	}
	// The picture is still until the square appears: an event before it would be noise.
	if c.MotionEvents != 0 {
		t.Errorf("%d motion events in a still picture, want none", c.MotionEvents)
	}
	if m := steps[StepMotion].Stats; m.MotionEvents < 1 || m.Dropped != 0 {
		t.Errorf("after the square appeared: %d motion events, %d frames refused; want an event and none refused", m.MotionEvents, m.Dropped)
	}

	u := steps[StepUnplugged].Stats
	switch {
	case firstDown == nil:
		t.Errorf("no condition report shows capture stopping after the unplug")
	case firstDown.Stats.Capturing.Reason != string(capture.ReasonDisconnected) || !strings.Contains(firstDown.Stats.Capturing.Message, "/dev/video0"):
		t.Errorf("after the unplug Capturing is %+v, want reason %s and a message naming /dev/video0", firstDown.Stats.Capturing, capture.ReasonDisconnected)
	}
	if u.Capturing.OK || u.Capturing.Reason != string(capture.ReasonDisconnected) {
		t.Errorf("unplugged: Capturing is %+v, want false with reason %s", u.Capturing, capture.ReasonDisconnected)
	}

	r := steps[StepRecovered].Stats
	if !r.Capturing.OK || r.Frames < u.Frames+30 || r.Width != 640 || r.Height != 480 {
		t.Errorf("after the camera came back: Capturing %+v, %d frames (%d at the unplug), %dx%d; want capturing, 30 more frames, 640x480",
			r.Capturing, r.Frames, u.Frames, r.Width, r.Height)
	}
	if !r.LastFrame.After(u.LastFrame) {
		t.Errorf("no frame since the unplug: last frame %s, at the unplug %s", r.LastFrame, u.LastFrame)
	}
	if !strings.Contains(console, "init: the guest exited with status 0") {
		t.Errorf("the guest did not exit cleanly")
	}
}
