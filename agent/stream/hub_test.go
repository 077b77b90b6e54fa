package stream

import (
	"bytes"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestSubscribeRefusesClientsOverTheLimit(t *testing.T) {
	h := NewHub(2)
	subscribe := func(want error) *Client {
		t.Helper()
		c, err := h.Subscribe()
		if !errors.Is(err, want) {
			t.Fatalf("Subscribe with %d clients attached: %v, want %v", h.Clients(), err, want)
		}
		return c
	}

	a, b := subscribe(nil), subscribe(nil)
	subscribe(ErrTooManyClients)
	a.Close()
	a.Close() // a second Close frees no second slot
	c := subscribe(nil)
	subscribe(ErrTooManyClients)

	h.SetMaxClients(3)
	d := subscribe(nil)
	if h.Clients() != 3 {
		t.Errorf("Clients %d, want 3", h.Clients())
	}

	// Lowering the limit keeps the attached clients and refuses new ones until enough left.
	h.SetMaxClients(1)
	if h.Clients() != 3 {
		t.Errorf("Clients %d after lowering the limit, want the 3 attached", h.Clients())
	}
	b.Close()
	c.Close()
	subscribe(ErrTooManyClients)
	d.Close()
	subscribe(nil)

	h.SetMaxClients(0)
	subscribe(ErrTooManyClients)
}

func TestLatest(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := NewHub(1)
	h.Clock = clocktesting.NewFakePassiveClock(t0)
	if _, ok := h.Latest(); ok {
		t.Fatal("Latest reports a frame before any was published")
	}
	h.Publish(nil, t0) // an empty frame is dropped
	if _, ok := h.Latest(); ok {
		t.Fatal("Latest reports the empty frame")
	}

	captured := t0.Add(-time.Second)
	h.Publish([]byte("one"), captured)
	h.Publish([]byte("two"), time.Time{})
	f, ok := h.Latest()
	if !ok {
		t.Fatal("Latest reports no frame after two were published")
	}
	if f.Seq() != 2 || !bytes.Equal(f.JPEG(), []byte("two")) || !f.Captured().Equal(t0) {
		t.Errorf("Latest is frame %d %q captured %v, want frame 2 %q stamped by the hub's clock %v", f.Seq(), f.JPEG(), f.Captured(), "two", t0)
	}
}

// TestRecycledFramesComeBackWhenUnheld: a recycled frame's buffer returns to its owner only
// once neither the hub (as latest) nor any holder still uses it.
func TestRecycledFramesComeBackWhenUnheld(t *testing.T) {
	h := NewHub(1)
	var back [][]byte
	recycle := func(b []byte) { back = append(back, b) }
	first := []byte("first")
	h.PublishRecycled(first, time.Time{}, recycle)
	held, ok := h.Acquire()
	if !ok || string(held.JPEG()) != "first" {
		t.Fatalf("Acquire: %v %q", ok, held.JPEG())
	}
	h.PublishRecycled([]byte("second"), time.Time{}, recycle)
	if len(back) != 0 {
		t.Fatalf("a held frame was recycled: %q", back)
	}
	held.Release()
	if len(back) != 1 || string(back[0]) != "first" {
		t.Fatalf("released frame not recycled: %q", back)
	}
	h.PublishRecycled([]byte("third"), time.Time{}, recycle)
	if len(back) != 2 || string(back[1]) != "second" {
		t.Fatalf("an unheld frame replaced as latest was not recycled: %q", back)
	}
}
