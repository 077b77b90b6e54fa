// Package capture turns cameras into streams of frames. Every source (a V4L2 device, a test
// pattern, an IP camera's MJPEG stream) satisfies Source, so capture, motion and streaming
// are tested without hardware; the V4L2 source lives in a file of its own because it needs
// Linux and cgo.
//
// Frame is the one frame abstraction of the agent: sources deliver it, the motion detector
// reads its luma (JPEG DC terms or YUYV's Y plane), and the stream hub sends its JPEG bytes.
package capture

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Format is how a frame's bytes are laid out.
type Format string

const (
	// FormatMJPEG frames are complete JPEG images, streamed to clients as they are.
	FormatMJPEG Format = "MJPEG"
	// FormatYUYV frames are packed 4:2:2, two bytes per pixel, luma first.
	FormatYUYV Format = "YUYV"
)

// Frame is one captured image. Data is valid only until the Deliver call that carries it
// returns: sources reuse their buffers, so a receiver that keeps a frame copies it.
type Frame struct {
	Data   []byte
	Format Format
	Width  int
	Height int
	// Stride is the length in bytes of one row of a raw (YUYV) frame; 0 for JPEG.
	Stride   int
	Captured time.Time
}

// Config is what a source is asked to deliver; a device may adjust the size, and reports the
// size it chose in each Frame.
type Config struct {
	Device string
	Format Format
	Width  int
	Height int
	FPS    int
}

// Deliver receives each frame on the source's goroutine. A slow Deliver makes the source
// drop frames (a device's ring overwrites, a generator skips ahead, a network source is
// throttled by TCP), never queue them.
type Deliver func(Frame)

// Source delivers frames until its context ends or it fails.
type Source interface {
	// Run opens the source and calls deliver for each frame until ctx ends (it then returns
	// nil) or the source fails (it returns an *Error saying why). Run is called again, after
	// a backoff, to retry a failed source.
	Run(ctx context.Context, deliver Deliver) error
}

// Reason classifies a source failure for the Camera's Capturing condition.
type Reason string

// Reasons a source fails; each becomes the reason of the Camera's Capturing condition.
const (
	ReasonDeviceNotFound    Reason = "DeviceNotFound"
	ReasonDeviceBusy        Reason = "DeviceBusy"
	ReasonNotACamera        Reason = "NotACamera"
	ReasonFormatUnsupported Reason = "FormatUnsupported"
	ReasonDisconnected      Reason = "Disconnected"
	ReasonConnectFailed     Reason = "ConnectFailed"
	ReasonStalled           Reason = "Stalled"
	ReasonBadStream         Reason = "BadStream"
	ReasonUnsupported       Reason = "Unsupported"
)

// Error is a source failure with a reason a person can act on.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Fail wraps err with a reason.
func Fail(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf is the reason of a source failure; Disconnected for errors that carry none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonDisconnected
}
