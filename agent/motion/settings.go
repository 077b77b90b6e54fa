package motion

import (
	"errors"
	"fmt"
)

// MaxMasks bounds the mask regions, as the Camera resource does.
const MaxMasks = 16

// Settings tune a Detector. They mirror the Camera resource's motion fields (spec.motion),
// with integers throughout: brightness 0-255, shares of the frame in per-mille, and times in
// frames, since the detector counts frames and the agent knows the frame rate.
type Settings struct {
	// Threshold is how much a cell's brightness (0-255) must differ from the background to
	// count as changed: a cell changes when |cell - background| >= Threshold. A cell is the
	// mean of an 8x8 block, so sensor noise is already averaged down; 1-255.
	Threshold int
	// MinArea is the smallest changed share of the unmasked cells, in per-mille, that makes a
	// frame a motion frame (10 = 1%); 1-1000.
	MinArea int
	// MinFrames is how many motion frames in a row start an event; 1 or more.
	MinFrames int
	// EventGap is how many frames without motion end an event; 1 or more. The agent derives
	// it from the Camera's eventGap duration and the frame rate.
	EventGap int
	// BackgroundRate is how fast the background follows the picture, in per-mille per frame:
	// each unchanged cell moves this share of the way to the new frame (20 = 2%, which
	// follows dusk and drifting clouds at 30 fps). A changed cell keeps its background for
	// up to 4000/BackgroundRate frames in a row (200 at 20, under 7 s at 30 fps), so a
	// moving object leaves no trail; a change that lasts longer is taken as part of the
	// scene (a parked car) and absorbed at this rate; 1-1000.
	BackgroundRate int
	// LightSwitch is the changed share, in per-mille, above which a change is taken for the
	// lights or the IR cut filter switching: the background is reset to the frame and no
	// motion is counted. 1000 turns suppression off; 1-1000.
	LightSwitch int
	// Mask lists regions where change is ignored. A cell any part of which lies in a region
	// is masked, so an object inside a region never counts.
	Mask []Rect
}

// Rect is a rectangle in normalized frame coordinates, in per-mille: (0,0) is the top-left
// corner and (1000,1000) the bottom-right, whatever the resolution.
type Rect struct {
	X, Y, W, H int
}

// DefaultSettings returns the Camera resource's defaults, with EventGap set for 10 s at 30
// fps.
func DefaultSettings() Settings {
	return Settings{
		Threshold:      20,
		MinArea:        10,
		MinFrames:      3,
		EventGap:       300,
		BackgroundRate: 20,
		LightSwitch:    600,
	}
}

// Validate reports every field out of range, joined.
func (s Settings) Validate() error {
	var errs []error
	check := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s %d is out of range %d-%d", name, v, lo, hi))
		}
	}
	const many = 1 << 30
	check("threshold", s.Threshold, 1, 255)
	check("minArea", s.MinArea, 1, 1000)
	check("minFrames", s.MinFrames, 1, many)
	check("eventGap", s.EventGap, 1, many)
	check("backgroundRate", s.BackgroundRate, 1, 1000)
	check("lightSwitch", s.LightSwitch, 1, 1000)
	if len(s.Mask) > MaxMasks {
		errs = append(errs, fmt.Errorf("%d mask regions, at most %d", len(s.Mask), MaxMasks))
	}
	for i, m := range s.Mask {
		if m.X < 0 || m.Y < 0 || m.W < 1 || m.H < 1 || m.X+m.W > 1000 || m.Y+m.H > 1000 {
			errs = append(errs, fmt.Errorf("mask %d (%d,%d %dx%d) must lie inside 0-1000 with a positive size", i, m.X, m.Y, m.W, m.H))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("motion settings: %w", err)
	}
	return nil
}
