package camera

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/agent/capture"
	"github.com/camfleet/camfleet/agent/motion"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// MotionSettings converts a Camera's motion settings from the API's units (a duration for the
// event gap, per-mille areas, normalized masks) into the detector's, which counts frames, at
// fps frames per second.
func MotionSettings(m camv1.MotionSpec, fps float64) motion.Settings {
	s := motion.DefaultSettings()
	if m.Threshold > 0 {
		s.Threshold = int(m.Threshold)
	}
	if m.MinAreaPerMille > 0 {
		s.MinArea = int(m.MinAreaPerMille)
	}
	if m.ConsecutiveFrames > 0 {
		s.MinFrames = int(m.ConsecutiveFrames)
	}
	if m.LightSwitchPerMille > 0 {
		s.LightSwitch = int(m.LightSwitchPerMille)
	}
	gap := 10 * time.Second
	if m.EventGap != nil {
		gap = m.EventGap.Duration
	}
	if fps <= 0 {
		fps = 1
	}
	s.EventGap = max(1, int(math.Ceil(gap.Seconds()*fps)))
	s.Mask = nil
	for _, r := range m.Masks {
		s.Mask = append(s.Mask, motion.Rect{X: int(r.Left), Y: int(r.Top), W: int(r.Width), H: int(r.Height)})
	}
	return s
}

// ipCameraClient reads IP cameras' streams. Its large read buffer takes a whole frame (60-100
// KB) in one system call instead of twenty 4 KB ones, which matters at 30 frames a second on a
// Pi. No timeout: MJPEGURL bounds a stalled stream itself.
var ipCameraClient = &http.Client{Transport: &http.Transport{
	Proxy: http.ProxyFromEnvironment, ReadBufferSize: 256 << 10, MaxIdleConnsPerHost: 1,
	TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
}}

// MotionEnabled reports whether detection is on (the API default is on).
func MotionEnabled(m camv1.MotionSpec) bool { return m.Enabled == nil || *m.Enabled }

// SourceFor builds the frame source a Camera's spec names.
func SourceFor(src camv1.CameraSource, c clock.Clock) (capture.Source, error) {
	cfg := capture.Config{Width: int(src.Width), Height: int(src.Height), FPS: int(src.FPS)}
	switch src.Type {
	case camv1.SourceTestPattern:
		tp := capture.TestPattern{Width: cfg.Width, Height: cfg.Height, FPS: cfg.FPS, Clock: c}
		if p := src.TestPattern; p != nil {
			tp.ObjectPerMille = int(p.ObjectPerMille)
			tp.MotionEvery, tp.MotionDuration = 30*time.Second, 5*time.Second
			if p.MotionEvery != nil {
				tp.MotionEvery = p.MotionEvery.Duration
			}
			if p.MotionDuration != nil {
				tp.MotionDuration = p.MotionDuration.Duration
			}
		}
		return tp, nil
	case camv1.SourceMJPEGURL:
		return &capture.MJPEGURL{URL: src.MJPEGURL, Clock: c, Client: ipCameraClient}, nil
	case camv1.SourceV4L2:
		if src.V4L2 == nil {
			return nil, fmt.Errorf("source.v4l2 is not set")
		}
		cfg.Device, cfg.Format = src.V4L2.Device, capture.FormatMJPEG
		if src.V4L2.PixelFormat == camv1.PixelFormatYUYV {
			cfg.Format = capture.FormatYUYV
		}
		return capture.V4L2{Config: cfg}, nil
	}
	return nil, fmt.Errorf("source.type %q is not supported", src.Type)
}
