//go:build linux && cgo

package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/vladimirvivien/go4vl/device"
	"github.com/vladimirvivien/go4vl/v4l2"
)

// V4L2 captures from a Video4Linux2 device, such as a USB webcam on a Raspberry Pi.
type V4L2 struct {
	Config Config
}

// Frames opens the device with the asked format, size and rate, and streams its frames.
func (s V4L2) Frames(ctx context.Context) (<-chan Frame, error) {
	fourcc := v4l2.PixelFmtMJPEG
	if s.Config.Format == FormatYUYV {
		fourcc = v4l2.PixelFmtYUYV
	}
	dev, err := device.Open(s.Config.Device,
		device.WithPixFormat(v4l2.PixFormat{Width: uint32(s.Config.Width), Height: uint32(s.Config.Height), PixelFormat: fourcc, Field: v4l2.FieldNone}),
		device.WithFPS(uint32(s.Config.FPS)),
		device.WithBufferSize(4))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Config.Device, err)
	}
	got, err := dev.GetPixFormat()
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("read format of %s: %w", s.Config.Device, err)
	}
	if got.PixelFormat != fourcc {
		dev.Close()
		return nil, fmt.Errorf("%s does not deliver %s", s.Config.Device, s.Config.Format)
	}
	if err := dev.Start(ctx); err != nil {
		dev.Close()
		return nil, fmt.Errorf("start %s: %w", s.Config.Device, err)
	}
	out := make(chan Frame, 1)
	go func() {
		defer close(out)
		defer dev.Close()
		for data := range dev.GetOutput() {
			f := Frame{Data: data, Format: s.Config.Format, Width: int(got.Width), Height: int(got.Height), Captured: time.Now()}
			select {
			case out <- f:
			case <-ctx.Done():
				return
			default: // the reader is behind: drop this frame rather than queue it
			}
		}
	}()
	return out, nil
}
