package stream

import (
	"sync"
	"syscall"
)

// maxInline is how many waiting clients one Publish writes to itself; the others are woken
// to write on their own goroutines, so that a camera with many viewers does not spend its
// frame time on their sockets.
const maxInline = 4

// Inline writes. At 30 frames a second, waking a client's goroutine for every frame (a
// futex wake, another thread spinning up to run it, and parking again) costs a Pi about as
// much as writing the frame. So while a client on a plain HTTP/1.1 connection waits for a
// frame, Publish writes the part for it, without blocking: when the socket takes the whole
// part the client's goroutine never wakes. When it takes only some of it, the client's
// goroutine is woken to write the rest with deadlines, as it writes every part it finds
// waiting when it has finished the previous one. Only one of the two writes at a time: the
// publisher only while the client is parked, under the client's lock.

// inlineState is a client's side of inline writes; the zero value has them off.
type inlineState struct {
	mu sync.Mutex
	// raw is the client's socket, written without blocking; nil when off.
	raw syscall.RawConn
	// done is the stream's end; the publisher writes nothing once it is closed.
	done <-chan struct{}
	// parked is true while the client's goroutine waits on wake: only then does the
	// publisher write.
	parked bool
	wake   chan struct{}
	// handed is a part the publisher began and the client's goroutine must finish, from
	// byte handedOff of the part (header, image, delimiter); it holds a reference.
	handed    *Frame
	handedOff int
}

func (c *Client) signal() {
	select {
	case c.in.wake <- struct{}{}:
	default:
	}
}

// addInline lets the hub's publisher write to c over raw until removeInline.
func (h *Hub) addInline(c *Client, raw syscall.RawConn, done <-chan struct{}) {
	c.in.mu.Lock()
	c.in.raw, c.in.done, c.in.wake = raw, done, make(chan struct{}, 1)
	c.in.mu.Unlock()
	h.inlineMu.Lock()
	defer h.inlineMu.Unlock()
	cur := h.inline.Load()
	var next []*Client
	if cur != nil {
		next = append(next, (*cur)...)
	}
	next = append(next, c)
	h.inline.Store(&next)
}

// removeInline ends inline writes to c; once it returns the publisher no longer touches c.
func (h *Hub) removeInline(c *Client) {
	h.inlineMu.Lock()
	if cur := h.inline.Load(); cur != nil {
		next := make([]*Client, 0, len(*cur))
		for _, o := range *cur {
			if o != c {
				next = append(next, o)
			}
		}
		h.inline.Store(&next)
	}
	h.inlineMu.Unlock()
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	c.in.raw, c.in.parked = nil, false
	if c.in.handed != nil {
		c.in.handed.Release()
		c.in.handed = nil
	}
}

// writeInline offers the frame just published to the parked inline clients.
func (h *Hub) writeInline(f *Frame) {
	list := h.inline.Load()
	if list == nil {
		return
	}
	for i, c := range *list {
		if i < maxInline {
			c.offer(f)
			continue
		}
		c.in.mu.Lock()
		parked := c.in.parked
		c.in.mu.Unlock()
		if parked {
			c.signal()
		}
	}
}

// offer writes f to c if c is parked, as much as its socket takes at once, and hands the
// rest to c's goroutine.
func (c *Client) offer(f *Frame) {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	if !c.in.parked || c.in.raw == nil {
		return // busy writing: it takes the latest frame when done
	}
	select {
	case <-c.in.done:
		c.signal()
		return
	case <-c.closed:
		c.signal()
		return
	default:
	}
	if f.seq <= c.seen {
		return
	}
	c.skip(f.seq - c.seen - 1)
	c.seen = f.seq
	if !c.pace.admit(f.captured) {
		c.skip(1)
		return
	}
	hdr := partHeader(c.hdr[:0], len(f.data))
	n := tryWritev(c.in.raw, hdr, f.data, delimiter)
	if n == len(hdr)+len(f.data)+len(delimiter) {
		c.sent.Add(1)
		c.hub.sent.Add(1)
		c.hub.inlineWhole.Add(1)
		return
	}
	c.hub.inlineHanded.Add(1)
	f.refs.Add(1)
	c.in.handed, c.in.handedOff = f, max(n, 0)
	c.in.parked = false
	c.signal()
}

// await returns the next part for c's goroutine to write, from byte off: the rest of one
// the publisher began, else the latest frame if c has not seen it; otherwise it parks c
// until the publisher hands it a part or wakes it. It returns nil when the stream ends.
func (c *Client) await(done <-chan struct{}) (f *Frame, off int) {
	for {
		c.in.mu.Lock()
		if f, off := c.in.handed, c.in.handedOff; f != nil {
			c.in.handed = nil
			c.in.mu.Unlock()
			return f, off
		}
		select {
		case <-done:
			c.in.mu.Unlock()
			return nil, 0
		case <-c.closed:
			c.in.mu.Unlock()
			return nil, 0
		default:
		}
		if latest := c.hub.latest.Load(); latest.seq != c.seen {
			held, ok := c.hub.Acquire()
			if ok {
				c.skip(held.seq - c.seen - 1)
				c.seen = held.seq
				if c.pace.admit(held.captured) {
					c.in.mu.Unlock()
					return held, 0
				}
				held.Release()
				c.skip(1)
			}
			c.in.mu.Unlock()
			continue
		}
		c.in.parked = true
		c.in.mu.Unlock()
		select {
		case <-c.in.wake:
		case <-done:
		case <-c.closed:
		}
		c.in.mu.Lock()
		c.in.parked = false
		c.in.mu.Unlock()
	}
}
