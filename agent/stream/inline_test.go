package stream

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/camfleet/camfleet/internal/testkit"
)

// TestPublisherWritesToWaitingClients: a client waiting for a frame gets it from Publish
// itself, whole when its socket takes the part at once, and finished by its own goroutine
// when the socket takes only the beginning; either way every byte arrives in order.
func TestPublisherWritesToWaitingClients(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("inline writes are Linux only")
	}
	for _, tc := range []struct {
		name   string
		sndbuf int // the server's socket send buffer; 0: the system's, which takes a frame
		handed bool
	}{
		{"the socket takes whole parts", 0, false},
		{"the socket takes part of each", 16 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub(2)
			ts := startServerBuffered(t, h, 0, tc.sndbuf)
			w := watch(t, ts)
			s := recv(t, ts.served, "the request")
			const frames = 40
			for i := uint64(1); i <= frames; i++ {
				// Publish only once the client waits again, so that each frame is offered to it.
				if i > 1 {
					testkit.Eventually(t, hangGuard, "the client to wait for frame "+strconv.FormatUint(i, 10), func() (bool, string) {
						s.client.in.mu.Lock()
						defer s.client.in.mu.Unlock()
						return s.client.in.parked, "the client is not parked"
					})
				}
				want := testFrame(i, frameSize+int(i)*100)
				h.Publish(want, time.Time{})
				p := recv(t, w.parts, "frame "+strconv.FormatUint(i, 10))
				if !bytes.Equal(p.data, want) {
					t.Fatalf("frame %d: got %d bytes of frame %d, want frame %d's %d bytes", i, len(p.data), frameSeq(p.data), i, len(want))
				}
			}
			whole, handed := h.inlineWhole.Load(), h.inlineHanded.Load()
			t.Logf("parts written whole by Publish: %d, finished by the client's goroutine: %d", whole, handed)
			if whole+handed < frames-1 {
				t.Errorf("Publish began %d of the %d frames offered while the client waited", whole+handed, frames-1)
			}
			if tc.handed && handed == 0 {
				t.Errorf("no part was left to the client's goroutine with a %d-byte socket buffer", tc.sndbuf)
			}
			if !tc.handed && whole == 0 {
				t.Errorf("no part was written whole by Publish")
			}
			testkit.Eventually(t, hangGuard, "the hub to count every frame sent", func() (bool, string) { return sentIs(h, frames) })
		})
	}
}
