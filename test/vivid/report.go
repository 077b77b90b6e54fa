// Package vivid tests the agent's real V4L2 path against the kernel's vivid virtual camera:
// a qemu VM boots Debian's kernel with a busybox initramfs, and the guest program (./guest)
// runs an agent camera on /dev/video0 there, unplugs the camera and plugs it back, and reports
// what the camera saw on a serial port of its own. hack/vm.sh prepares the kernel, the modules and
// busybox.
package vivid

import "github.com/camfleet/camfleet/agent/camera"

// Port is the guest's device for its reports: the VM's second serial port. The kernel's console
// is the first one, and it prints whenever it likes (a warning landed inside a report line once,
// under `quiet`), so the reports get a port the kernel never writes to.
const Port = "/dev/ttyS1"

// Prefix starts each line the guest reports; a Report in JSON follows it.
const Prefix = "CAMFLEET "

// Steps the guest reports, in the order it reaches them.
const (
	// StepCapturing: frames arrived with motion detection on and the picture still.
	StepCapturing = "capturing"
	// StepMotion: the camera counted a motion event after vivid drew a square in the picture.
	StepMotion = "motion"
	// StepUnplugged: vivid's Disconnect button was pressed and the camera noticed.
	StepUnplugged = "unplugged"
	// StepReplugged: the vivid module was removed and loaded again, a new camera appearing.
	StepReplugged = "replugged"
	// StepRecovered: frames arrived again from the new device, with no restart of the camera.
	StepRecovered = "recovered"
	// StepDone: the guest stopped the camera and is about to exit.
	StepDone = "done"
	// StepCondition is not a step of the script: the camera changed a condition.
	StepCondition = "condition"
	// StepFailed: the guest gave up; Error says why.
	StepFailed = "failed"
)

// Report is one line of the guest's report.
type Report struct {
	Step  string       `json:"step"`
	Stats camera.Stats `json:"stats"`
	Error string       `json:"error,omitempty"`
}
