package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// boundary separates the parts. Multipart readers look for it in the image bytes too, so it
// is long enough not to occur in a JPEG by chance.
const boundary = "camfleet-mjpeg-5f0c2a9e4b7d31c8"

// ContentType is the Content-Type of the responses ServeMJPEG writes.
const ContentType = "multipart/x-mixed-replace; boundary=" + boundary

// delimiter follows every image at once rather than preceding the next one, so that a
// browser shows a frame as soon as it has it instead of when the next one starts.
var delimiter = []byte("\r\n--" + boundary + "\r\n")

var (
	errForeignClient = errors.New("stream: client subscribed to another hub")
	errClientBusy    = errors.New("stream: client already being served")
)

// ServeMJPEG streams the hub's frames to c as a multipart/x-mixed-replace response: the
// latest frame at once, then each newer frame as soon as c has finished writing the
// previous one, at most maxFPS frames a second when maxFPS > 0 (judged on capture times).
// It returns nil when ctx is done (a write blocked at that moment is cut short) or c is
// closed, and an error when a write fails while ctx is not done, or when a part takes
// longer than the hub's WriteTimeout because the client stopped reading. A client that goes
// away ends the request's context, so it may end the stream either way. One ServeMJPEG at a
// time per client.
func (h *Hub) ServeMJPEG(ctx context.Context, w http.ResponseWriter, c *Client, maxFPS int) error {
	if c.hub != h {
		return errForeignClient
	}
	if !c.serving.CompareAndSwap(false, true) {
		return errClientBusy
	}
	defer c.serving.Store(false)

	timeout := h.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	rc := http.NewResponseController(w)
	p := part{w: w, rc: rc, timeout: timeout, deadlines: true}
	// On HTTP/1.1 the connection is taken over, so each part goes straight to the socket
	// rather than through chunked encoding, a buffer and a flush: at 30 frames a second the
	// copies and system calls are a large share of a Pi's work per frame. HTTP/2 streams go
	// through the ResponseWriter.
	conn, brw, hijackErr := rc.Hijack()
	if hijackErr == nil {
		defer conn.Close()
		p.conn = conn
		_ = brw.Writer.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		// net/http no longer watches the connection: a read that returns means the client
		// went away, which ends the stream as the request's context would have.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			var b [1]byte
			_, _ = conn.Read(b[:])
			cancel()
		}()
	}

	// A write to a client that stopped reading would otherwise outlive ctx (a revoked token)
	// until its deadline.
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cut)
		p.cut.Store(true)
		if p.conn != nil {
			_ = p.conn.SetWriteDeadline(time.Unix(1, 0))
			return
		}
		_ = rc.SetWriteDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-cut
		}
		// The server still finishes the response after we return; bound that write too. It
		// clears the deadline itself afterwards.
		p.setDeadline()
	}()

	if p.conn != nil {
		p.setDeadline()
		if _, err := p.conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: " + ContentType + "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + string(delimiter[2:]))); err != nil {
			return p.failed(ctx, fmt.Errorf("start MJPEG stream: %w", err))
		}
	} else {
		header := w.Header()
		header.Set("Content-Type", ContentType)
		header.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if err := p.start(); err != nil {
			return p.failed(ctx, fmt.Errorf("start MJPEG stream: %w", err))
		}
	}

	c.seen = 0
	if f := h.latest.Load(); f.seq > 0 {
		c.seen = f.seq - 1 // the latest frame is sent at once
	}
	c.pace = newPacer(maxFPS)
	done := ctx.Done()
	inline := false
	if sc, ok := p.conn.(syscall.Conn); ok && inlineSupported {
		if raw, err := sc.SyscallConn(); err == nil {
			h.addInline(c, raw, done)
			defer h.removeInline(c)
			inline = true
		}
	}
	for {
		if ctx.Err() != nil || c.isClosed() {
			return nil
		}
		var f *Frame
		off := 0
		if inline {
			f, off = c.await(done)
		} else {
			f = c.next(done)
		}
		if f == nil {
			return nil
		}
		if !inline {
			c.seen = f.seq
			if !c.pace.admit(f.captured) {
				f.Release()
				c.skip(1)
				continue
			}
		}
		err := p.write(c.hdr[:0], f.data, off)
		f.Release()
		if err != nil {
			return p.failed(ctx, fmt.Errorf("write frame %d: %w", f.seq, err))
		}
		c.sent.Add(1)
		h.sent.Add(1)
	}
}

// failed tells a write that failed on its own, returned as an error, from the end of the
// stream: ctx ended (its write cut short, or the client went away, which also ends ctx).
// A part that outlived its deadline is an error whatever happened since, for the server
// closes the connection of a failed write, which ends ctx too.
func (p *part) failed(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(p.deadline) {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Client) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// part writes the parts of one response.
type part struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	// deadlines is false once the writer has said it cannot set one (a test recorder, a
	// wrapper without Unwrap): the stream then goes on without.
	deadlines bool
	// deadline is the current part's.
	deadline time.Time
	// cut is set once the stream's context ended; deadlines set after that are in the past,
	// so a part begun then (an inline write may have sent its start) cannot block.
	cut atomic.Bool
	// conn is the taken-over HTTP/1.1 connection, written directly; nil on HTTP/2.
	conn net.Conn
}

func (p *part) setDeadline() {
	if !p.deadlines {
		return
	}
	// Deadlines are wall-clock instants for the network poller, so they come from the real
	// clock, not the hub's.
	p.deadline = time.Now().Add(p.timeout)
	p.applyDeadline(p.deadline)
	if p.cut.Load() {
		// The context ended meanwhile, and the past deadline it set may have been overwritten.
		p.applyDeadline(time.Unix(1, 0))
	}
}

func (p *part) applyDeadline(t time.Time) {
	if p.conn != nil {
		_ = p.conn.SetWriteDeadline(t)
		return
	}
	if err := p.rc.SetWriteDeadline(t); errors.Is(err, http.ErrNotSupported) {
		p.deadlines = false
	}
}

func (p *part) start() error {
	p.setDeadline()
	if _, err := p.w.Write(delimiter[2:]); err != nil {
		return err
	}
	return p.rc.Flush()
}

// partHeader formats the header of a part of n image bytes into buf.
func partHeader(buf []byte, n int) []byte {
	buf = append(buf, "Content-Type: image/jpeg\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, "\r\n\r\n"...)
}

// write sends one image and the delimiter after it, formatting the part header into buf;
// on a taken-over connection it starts at byte off of the part, whose beginning an inline
// write already sent.
func (p *part) write(buf, jpeg []byte, off int) error {
	p.setDeadline()
	buf = partHeader(buf, len(jpeg))
	if p.conn != nil {
		// Three writes, not one vectored write: a single write larger than the socket buffer
		// leaves its tail waiting on the receiver's delayed ACK (40 ms on Linux), while the
		// short delimiter write pushes it out at once.
		for _, piece := range [3][]byte{buf, jpeg, delimiter} {
			if off >= len(piece) {
				off -= len(piece)
				continue
			}
			if _, err := p.conn.Write(piece[off:]); err != nil {
				return err
			}
			off = 0
		}
		return nil
	}
	if _, err := p.w.Write(buf); err != nil {
		return err
	}
	if _, err := p.w.Write(jpeg); err != nil {
		return err
	}
	if _, err := p.w.Write(delimiter); err != nil {
		return err
	}
	return p.rc.Flush()
}

// pacer admits the frames of a client capped at maxFPS. It judges capture times rather than
// when the client wakes, and lets a frame in slightly early (by an eighth of the interval),
// so that camera jitter does not halve the rate: a 30 fps camera capped at 15 sends every
// other frame, not every third. Each admitted frame moves the due time on by one interval,
// so on average no more than maxFPS frames a second get through.
type pacer struct {
	interval time.Duration
	slack    time.Duration
	// due is the capture time the next frame is due at; zero before the first frame.
	due time.Time
}

func newPacer(maxFPS int) pacer {
	if maxFPS <= 0 {
		return pacer{}
	}
	iv := time.Second / time.Duration(maxFPS)
	return pacer{interval: iv, slack: iv / 8}
}

// admit reports whether the frame captured at t is sent.
func (p *pacer) admit(t time.Time) bool {
	if p.interval <= 0 {
		return true
	}
	if p.due.IsZero() {
		p.due = t.Add(p.interval)
		return true
	}
	last := p.due.Add(-p.interval)
	if !t.Before(last) && t.Before(p.due.Add(-p.slack)) {
		return false // too early
	}
	if t.Before(last) || t.Sub(p.due) >= p.interval {
		// The clock went back, or frames stopped coming for a while: start afresh rather
		// than send a burst to catch up.
		p.due = t.Add(p.interval)
	} else {
		p.due = p.due.Add(p.interval)
	}
	return true
}
