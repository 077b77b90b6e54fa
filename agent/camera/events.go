package camera

import (
	"slices"
	"sync"
	"time"

	"github.com/camfleet/camfleet/agent/motion"
)

// RingSize bounds the motion events kept per camera, with their snapshots.
const RingSize = 64

// Ack records who acknowledged an event, and when.
type Ack struct {
	User string    `json:"user"`
	Time time.Time `json:"time"`
}

// Event is one motion event as the API shows it.
type Event struct {
	ID     int64      `json:"id"`
	Camera string     `json:"camera"`
	Start  time.Time  `json:"start"`
	End    *time.Time `json:"end,omitempty"`
	// PeakAreaPerMille is the largest changed share of the frame, in thousandths.
	PeakAreaPerMille int `json:"peakAreaPerMille"`
	// Box bounds the changed area, in thousandths of the frame.
	Box  motion.Rect `json:"box"`
	Acks []Ack       `json:"acks,omitempty"`

	snapshot []byte
}

// Events is a camera's bounded ring of motion events and the live subscribers to them.
type Events struct {
	camera string

	mu     sync.Mutex
	ring   []*Event
	nextID int64
	total  int64
	subs   map[chan Event]struct{}
}

func newEvents(camera string) *Events {
	return &Events{camera: camera, nextID: 1, subs: map[chan Event]struct{}{}}
}

// List returns the events, newest first, without snapshots.
func (e *Events) List() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Event, 0, len(e.ring))
	for i := len(e.ring) - 1; i >= 0; i-- {
		out = append(out, e.ring[i].public())
	}
	return out
}

// Snapshot returns the JPEG of an event's strongest frame.
func (e *Events) Snapshot(id int64) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.ring {
		if ev.ID == id && ev.snapshot != nil {
			return ev.snapshot, true
		}
	}
	return nil, false
}

// Total counts every event since the camera started.
func (e *Events) Total() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// Subscribe returns a channel of event updates (start, peak, end, ack). A subscriber that
// falls behind loses updates rather than holding memory.
func (e *Events) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 16)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
	}
}

// Ack records user's acknowledgement on the newest count events; acking an event twice
// changes nothing. It returns how many events gained an ack.
func (e *Events) Ack(user string, count int, now time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for i := len(e.ring) - 1; i >= 0 && count > 0; i, count = i-1, count-1 {
		ev := e.ring[i]
		if slices.ContainsFunc(ev.Acks, func(a Ack) bool { return a.User == user }) {
			continue
		}
		ev.Acks = append(ev.Acks, Ack{User: user, Time: now.UTC()})
		e.notify(ev)
		n++
	}
	return n
}

func (e *Events) start(start time.Time, area int, box motion.Rect, snapshot []byte) *Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := &Event{ID: e.nextID, Camera: e.camera, Start: start.UTC(), PeakAreaPerMille: area, Box: box, snapshot: snapshot}
	e.nextID++
	e.total++
	if len(e.ring) == RingSize {
		e.ring = slices.Delete(e.ring, 0, 1)
	}
	e.ring = append(e.ring, ev)
	e.notify(ev)
	return ev
}

// peak replaces the event's snapshot with a stronger frame.
func (e *Events) peak(ev *Event, area int, box motion.Rect, snapshot []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev.PeakAreaPerMille, ev.Box, ev.snapshot = area, box, snapshot
}

func (e *Events) end(ev *Event, end time.Time, box motion.Rect) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := end.UTC()
	ev.End, ev.Box = &t, box
	e.notify(ev)
}

// notify sends an update to every subscriber that has room. Called with mu held.
func (e *Events) notify(ev *Event) {
	pub := ev.public()
	for ch := range e.subs {
		select {
		case ch <- pub:
		default:
		}
	}
}

func (ev *Event) public() Event {
	c := *ev
	c.snapshot = nil
	c.Acks = slices.Clone(ev.Acks)
	if ev.End != nil {
		t := *ev.End
		c.End = &t
	}
	return c
}
