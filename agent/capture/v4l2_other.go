//go:build !linux || !cgo

package capture

import "context"

// V4L2 captures from a Video4Linux2 device. It needs Linux and cgo; this build lacks one of
// them, so Run always fails with Unsupported.
type V4L2 struct {
	Config Config
}

// Run returns an Unsupported failure.
func (s V4L2) Run(context.Context, Deliver) error {
	return Fail(ReasonUnsupported, "%s: V4L2 capture needs an agent built for Linux with cgo enabled", s.Config.Device)
}
