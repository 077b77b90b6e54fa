// Package capture turns cameras into streams of frames. Every source (a V4L2 device, a test
// pattern, an IP camera's MJPEG stream) satisfies Source, so capture, motion and streaming
// are tested without hardware; the V4L2 source lives in a file of its own because it needs
// Linux and cgo.
package capture

import (
	"context"
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

// Frame is one captured image. Data belongs to the receiver: sources never reuse it.
type Frame struct {
	Data     []byte
	Format   Format
	Width    int
	Height   int
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

// Source delivers frames until its context ends or it fails.
type Source interface {
	// Frames starts capture and returns the channel frames arrive on; it is closed when
	// capture stops. A slow reader makes the source drop frames, never buffer them.
	Frames(ctx context.Context) (<-chan Frame, error)
}
