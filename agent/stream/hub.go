// Package stream fans the JPEG frames of one camera out to the HTTP clients watching it as
// multipart/x-mixed-replace (MJPEG).
//
// A Hub keeps only the latest frame. Publish swaps it in and wakes the waiting clients by
// closing one channel. Each client is served on its own goroutine (the HTTP handler's), which
// sends the latest frame, waits for a newer one and sends that: a client that writes slowly
// skips the frames published meanwhile instead of queueing them, so it holds at most one
// frame and never delays another client. Every client gets the same bytes, the JPEG as the
// camera encoded it. For the first few clients on plain HTTP/1.1 that wait for a frame,
// Publish writes it itself without blocking, which spares waking their goroutines at every
// frame (inline.go).
package stream

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// DefaultWriteTimeout is how long one part may take to write when Hub.WriteTimeout is zero.
const DefaultWriteTimeout = 10 * time.Second

// ErrTooManyClients is returned by Subscribe when the hub already serves its maximum number
// of clients; the HTTP layer answers 503.
var ErrTooManyClients = errors.New("stream: too many clients")

// Frame is one published JPEG. It is immutable: the hub and every client share it.
type Frame struct {
	seq      uint64
	captured time.Time
	data     []byte
	// newer is closed when the next frame is published; waiting clients select on it.
	newer chan struct{}
	// refs counts the holders of data: the hub while the frame is the latest, and each
	// client writing it or caller of Acquire. At zero, recycle gets the buffer back.
	refs    atomic.Int32
	recycle func([]byte)
}

// Release gives back a frame taken with Acquire.
func (f *Frame) Release() {
	if f.refs.Add(-1) == 0 && f.recycle != nil {
		f.recycle(f.data)
	}
}

// Seq numbers the hub's frames from 1; a gap between two frames a client received is the
// number it skipped.
func (f *Frame) Seq() uint64 { return f.seq }

// Captured is when the camera captured the frame.
func (f *Frame) Captured() time.Time { return f.captured }

// JPEG is the frame's encoded image, shared by all clients: callers must not modify it.
func (f *Frame) JPEG() []byte { return f.data }

// Hub is the fan-out of one camera. Its methods are safe for concurrent use.
type Hub struct {
	// WriteTimeout bounds the writing of each part, so that a client that stops reading is
	// dropped instead of holding its goroutine; zero means DefaultWriteTimeout. Set it before
	// the hub serves clients.
	WriteTimeout time.Duration
	// Clock stamps frames published without a capture time; nil means the real clock. Set it
	// before the first Publish.
	Clock clock.PassiveClock

	mu     sync.Mutex // serialises Publish, so that sequence numbers follow the frame order
	latest atomic.Pointer[Frame]

	// inline lists the clients Publish may write to itself (inline.go); inlineMu
	// serialises its copy-on-write updates.
	inline   atomic.Pointer[[]*Client]
	inlineMu sync.Mutex
	// inlineWhole counts the parts Publish wrote whole, inlineHanded those whose rest it
	// left to the client's goroutine.
	inlineWhole, inlineHanded atomic.Uint64

	maxClients atomic.Int64
	clients    atomic.Int64
	sent       atomic.Uint64
	skipped    atomic.Uint64
}

// NewHub returns a hub that admits at most maxClients clients at a time.
func NewHub(maxClients int) *Hub {
	h := &Hub{}
	// Frame 0 is never sent: it only gives clients that arrive before the first frame a
	// channel to wait on.
	h.latest.Store(&Frame{newer: make(chan struct{})})
	h.SetMaxClients(maxClients)
	return h
}

// SetMaxClients changes the number of clients the hub admits; 0 or less admits none.
// Lowering it below Clients() refuses new clients but leaves the attached ones streaming.
func (h *Hub) SetMaxClients(n int) {
	h.maxClients.Store(int64(max(n, 0)))
}

// Publish makes jpeg the latest frame and wakes the clients waiting for one. The hub takes
// ownership of jpeg: the caller must not modify it afterwards. A zero captured time is
// replaced by the hub's clock. An empty jpeg is ignored. Publish never waits for a client:
// it writes to at most maxInline waiting clients, only what their sockets take at once.
func (h *Hub) Publish(jpeg []byte, captured time.Time) {
	h.PublishRecycled(jpeg, captured, nil)
}

// PublishRecycled is Publish with a buffer that recycle gets back once no client and no
// Acquire holds it any more, so a camera reuses a few buffers instead of allocating one
// per frame.
func (h *Hub) PublishRecycled(jpeg []byte, captured time.Time, recycle func([]byte)) {
	if len(jpeg) == 0 {
		if recycle != nil {
			recycle(jpeg)
		}
		return
	}
	h.mu.Lock()
	if captured.IsZero() {
		captured = h.now()
	}
	prev := h.latest.Load()
	f := &Frame{seq: prev.seq + 1, captured: captured, data: jpeg, newer: make(chan struct{}), recycle: recycle}
	f.refs.Store(1)
	inline := h.inline.Load()
	if inline != nil && len(*inline) > 0 {
		f.refs.Add(1) // held while writing to the inline clients
	} else {
		inline = nil
	}
	h.latest.Store(f)
	close(prev.newer)
	h.mu.Unlock()
	if prev.seq > 0 {
		prev.Release()
	}
	if inline != nil {
		h.writeInline(f)
		f.Release()
	}
}

// Acquire returns the latest frame, held until Release; false before the first frame.
func (h *Hub) Acquire() (*Frame, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.latest.Load()
	if f.seq == 0 {
		return nil, false
	}
	f.refs.Add(1)
	return f, true
}

func (h *Hub) now() time.Time {
	if h.Clock == nil {
		return time.Now()
	}
	return h.Clock.Now()
}

// Latest returns the latest frame; false before the first frame. Its data may be recycled
// as soon as a newer frame is published: readers of a recycled hub use Acquire.
func (h *Hub) Latest() (*Frame, bool) {
	f := h.latest.Load()
	if f.seq == 0 {
		return nil, false
	}
	return f, true
}

// Subscribe attaches a client, or returns ErrTooManyClients. The caller serves it with
// ServeMJPEG and must Close it.
func (h *Hub) Subscribe() (*Client, error) {
	for {
		n := h.clients.Load()
		if n >= h.maxClients.Load() {
			return nil, ErrTooManyClients
		}
		if h.clients.CompareAndSwap(n, n+1) {
			return &Client{hub: h, closed: make(chan struct{})}, nil
		}
	}
}

// Clients is the number of attached clients.
func (h *Hub) Clients() int { return int(h.clients.Load()) }

// Sent is the number of frames written to clients, summed over clients.
func (h *Hub) Sent() uint64 { return h.sent.Load() }

// Skipped is the number of frames clients missed because they were still writing an earlier
// frame or because of their rate cap, summed over clients.
func (h *Hub) Skipped() uint64 { return h.skipped.Load() }

// Client is one viewer of a hub's frames.
type Client struct {
	hub    *Hub
	closed chan struct{}
	once   sync.Once

	serving atomic.Bool
	// seen is the sequence number of the last frame this client sent or skipped, and pace
	// its rate cap; the goroutine in ServeMJPEG uses them, and the publisher while the
	// client is parked for inline writes (under in.mu).
	seen uint64
	pace pacer
	in   inlineState
	// hdr backs the part header, formatted anew for every frame without allocating.
	hdr [96]byte

	sent    atomic.Uint64
	skipped atomic.Uint64
}

// Close detaches the client and frees its slot; a ServeMJPEG serving it returns once it has
// finished the part it is writing. Close may be called more than once.
func (c *Client) Close() {
	c.once.Do(func() {
		close(c.closed)
		c.hub.clients.Add(-1)
	})
}

// Sent is the number of frames written to this client.
func (c *Client) Sent() uint64 { return c.sent.Load() }

// Skipped is the number of frames this client missed, being slow or rate-capped.
func (c *Client) Skipped() uint64 { return c.skipped.Load() }

// next waits for a frame newer than the last one the client saw and returns the latest,
// held until the caller releases it, counting those in between as skipped; nil when ctx is
// done or the client closed.
func (c *Client) next(done <-chan struct{}) *Frame {
	f := c.hub.latest.Load()
	for f.seq == c.seen {
		select {
		case <-f.newer:
			f = c.hub.latest.Load()
		case <-done:
			return nil
		case <-c.closed:
			return nil
		}
	}
	held, ok := c.hub.Acquire()
	if !ok {
		return nil
	}
	c.skip(held.seq - c.seen - 1)
	return held
}

func (c *Client) skip(n uint64) {
	if n == 0 {
		return
	}
	c.skipped.Add(n)
	c.hub.skipped.Add(n)
}
