package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/agent/mjpeg"
)

// DefaultStallTimeout is how long an MJPEGURL waits for a frame when StallTimeout is zero.
const DefaultStallTimeout = 10 * time.Second

// errStalled is the cause given to the request's context when the watchdog ends it.
var errStalled = errors.New("no frame within the stall timeout")

// MJPEGURL reads an IP camera's MJPEG stream over HTTP: multipart/x-mixed-replace, as most
// cameras serve it, or a plain stream of concatenated JPEGs. Use it by pointer: it counts the
// parts it skipped across runs.
type MJPEGURL struct {
	// URL is the stream's http or https address; credentials in it are sent as basic
	// authentication and never appear in errors.
	URL string
	// Client makes the request; http.DefaultClient if nil. A client Timeout would cut a
	// stream that is meant to last, so leave it zero: StallTimeout bounds the waiting.
	Client *http.Client
	// MaxFrame bounds a frame in bytes (mjpeg.DefaultMaxFrame if zero); larger parts are
	// skipped without being buffered.
	MaxFrame int
	// StallTimeout ends a run that gets no frame for this long, or no response to its
	// request; DefaultStallTimeout if zero.
	StallTimeout time.Duration
	// Clock times the stall watchdog; the real clock if nil.
	Clock clock.Clock

	skipped atomic.Int64
}

// Skipped is the number of parts skipped so far, over all runs: malformed, oversized, or
// JPEGs without a frame header.
func (s *MJPEGURL) Skipped() int64 { return s.skipped.Load() }

// Run connects and delivers each frame until ctx ends or the stream fails: ConnectFailed if
// the camera does not answer with a stream, Disconnected when the stream ends or breaks,
// Stalled when it sends no frame for StallTimeout, and BadStream when, in that time, it sent
// only parts that had to be skipped.
func (s *MJPEGURL) Run(ctx context.Context, deliver Deliver) error {
	clk := s.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	timeout := s.StallTimeout
	if timeout <= 0 {
		timeout = DefaultStallTimeout
	}
	where, err := redactedURL(s.URL)
	if err != nil {
		return err
	}

	reqCtx, cancel := context.WithCancelCause(ctx)
	var progress watchdogState
	progress.touch(clk)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch(reqCtx, clk, timeout, &progress, func() { cancel(errStalled) })
	}()
	defer func() {
		cancel(nil)
		<-done
	}()

	r, body, err := mjpeg.Open(reqCtx, s.URL, s.Client, s.MaxFrame)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(context.Cause(reqCtx), errStalled):
			return Fail(ReasonConnectFailed, "%s sent no response within %s", where, timeout)
		default:
			return Fail(ReasonConnectFailed, "%s: %w", where, err)
		}
	}
	defer func() { _ = body.Close() }()

	skippedInRow := 0 // parts skipped since the last good frame
	for {
		data, err := r.Next()
		if err == nil {
			var w, h int
			if w, h, err = jpegSize(data); err != nil {
				err = fmt.Errorf("%w: %w", mjpeg.ErrBadFrame, err)
			} else {
				skippedInRow = 0
				progress.delivering.Store(true)
				deliver(Frame{Data: data, Format: FormatMJPEG, Width: w, Height: h, Captured: clk.Now()})
				progress.touch(clk)
				progress.delivering.Store(false)
				continue
			}
		}
		if mjpeg.Skippable(err) {
			s.skipped.Add(1)
			skippedInRow++
			continue
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(context.Cause(reqCtx), errStalled) && skippedInRow > 0:
			return Fail(ReasonBadStream, "%s sent no usable frame within %s; the last %d parts were malformed or too large", where, timeout, skippedInRow)
		case errors.Is(context.Cause(reqCtx), errStalled):
			return Fail(ReasonStalled, "%s sent no frame within %s", where, timeout)
		case errors.Is(err, io.EOF):
			return Fail(ReasonDisconnected, "%s ended the stream", where)
		default:
			return Fail(ReasonDisconnected, "reading %s: %w", where, err)
		}
	}
}

// watchdogState is what the reading loop tells the watchdog: when it last made progress,
// and whether it is inside deliver, whose time is the receiver's and not the camera's.
type watchdogState struct {
	last       atomic.Int64 // Unix nanoseconds
	delivering atomic.Bool
}

func (w *watchdogState) touch(clk clock.PassiveClock) { w.last.Store(clk.Now().UnixNano()) }

func (w *watchdogState) idle(clk clock.PassiveClock) time.Duration {
	if w.delivering.Load() {
		return 0
	}
	return clk.Now().Sub(time.Unix(0, w.last.Load()))
}

// watch calls stall once the reading loop has been idle for timeout, and returns then or
// when ctx ends. It wakes only when a timeout could have passed, not for every frame.
func watch(ctx context.Context, clk clock.Clock, timeout time.Duration, state *watchdogState, stall func()) {
	t := clk.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			left := timeout - state.idle(clk)
			if left <= 0 {
				stall()
				return
			}
			t.Reset(left)
		}
	}
}

// redactedURL checks that raw is an http or https URL and returns it fit for messages, with
// any password replaced.
func redactedURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes raw in its error; say only what is wrong.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", Fail(ReasonConnectFailed, "camera URL does not parse: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", Fail(ReasonUnsupported, "camera URL %s is not an http or https address", u.Redacted())
	}
	return u.Redacted(), nil
}

// jpegSize reads a JPEG's width and height from its frame header (SOFn) by walking the
// marker segments before it, without decoding anything.
func jpegSize(data []byte) (width, height int, err error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 0, 0, errors.New("no JPEG start of image")
	}
	for i := 2; ; {
		// A marker is FF, optional FF fill bytes, and a code.
		if i >= len(data) || data[i] != 0xFF {
			return 0, 0, fmt.Errorf("no JPEG marker at offset %d", i)
		}
		for i < len(data) && data[i] == 0xFF {
			i++
		}
		if i >= len(data) {
			return 0, 0, errors.New("JPEG ends before its frame header")
		}
		m := data[i]
		i++
		switch {
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // no length
			continue
		case m == 0xD9 || m == 0xDA:
			return 0, 0, errors.New("JPEG has no frame header before its scan")
		}
		if i+2 > len(data) {
			return 0, 0, errors.New("JPEG ends inside a marker segment")
		}
		n := int(data[i])<<8 | int(data[i+1])
		if n < 2 || i+n > len(data) {
			return 0, 0, fmt.Errorf("JPEG marker 0x%02X has a bad length %d", m, n)
		}
		// SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if n < 8 {
				return 0, 0, errors.New("JPEG frame header too short")
			}
			height = int(data[i+3])<<8 | int(data[i+4])
			width = int(data[i+5])<<8 | int(data[i+6])
			if width == 0 || height == 0 {
				return 0, 0, fmt.Errorf("JPEG frame header gives a size of %dx%d", width, height)
			}
			return width, height, nil
		}
		i += n
	}
}
