package stream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/camfleet/camfleet/internal/testkit"
)

func TestClientReceivesPublishedFramesByteIdentical(t *testing.T) {
	h := NewHub(4)
	ts := startServer(t, h, 0)
	w := watch(t, ts)
	if got := w.resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}

	const frames = 5
	for i := uint64(1); i <= frames; i++ {
		h.Publish(testFrame(i, frameSize+int(i)*1000), time.Time{})
		// The next frame is published only once this one arrived, so none is skipped.
		p := recv(t, w.parts, "frame "+strconv.FormatUint(i, 10))
		want := testFrame(i, frameSize+int(i)*1000)
		if ct := p.header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("frame %d: part Content-Type %q, want image/jpeg", i, ct)
		}
		if cl := p.header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
			t.Errorf("frame %d: part Content-Length %q, want %d", i, cl, len(want))
		}
		if !bytes.Equal(p.data, want) {
			t.Fatalf("frame %d: got %d bytes starting with frame %d, want frame %d's %d bytes", i, len(p.data), frameSeq(p.data), i, len(want))
		}
	}
	// The counters move after the part is flushed, so the reader may see the frame first.
	testkit.Eventually(t, hangGuard, "the hub to count every frame sent", func() (bool, string) { return sentIs(h, frames) })
	if h.Skipped() != 0 {
		t.Errorf("Skipped %d, want 0", h.Skipped())
	}

	// A client arriving later gets the latest frame at once.
	late := watch(t, ts)
	p := recv(t, late.parts, "the latest frame")
	if !bytes.Equal(p.data, testFrame(frames, frameSize+frames*1000)) {
		t.Errorf("late client's first frame is frame %d, want %d", frameSeq(p.data), frames)
	}
	f, ok := h.Latest()
	if !ok || f.Seq() != frames || !bytes.Equal(f.JPEG(), p.data) {
		t.Errorf("Latest is not the last published frame")
	}
}

func TestSlowClientDoesNotDelayFastClient(t *testing.T) {
	h := NewHub(2)
	ts := startServer(t, h, 0)
	slowConn, _ := stalledClient(t, ts)
	slow := recv(t, ts.served, "the slow client's request")
	fast := watch(t, ts)
	recv(t, ts.served, "the fast client's request")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const frames = 200
	for i := uint64(1); i <= frames; i++ {
		h.Publish(testFrame(i, frameSize), time.Time{})
		p := recv(t, fast.parts, "the fast client's frame "+strconv.FormatUint(i, 10))
		if got := frameSeq(p.data); got != i || !bytes.Equal(p.data, testFrame(i, frameSize)) {
			t.Fatalf("fast client got frame %d (%d bytes), want frame %d intact", got, len(p.data), i)
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	// Keeping every frame for the slow client would take 200 frames (16 MB); the hub holds
	// the latest frame plus the one each client is writing.
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if growth > 16*frameSize {
		t.Errorf("heap grew by %d bytes over %d frames, want under %d", growth, frames, 16*frameSize)
	}
	t.Logf("heap grew by %d bytes over %d frames of %d bytes", growth, frames, frameSize)
	if n := slow.client.Sent(); n >= frames {
		t.Fatalf("slow client was sent %d frames: it never stalled, the test proves nothing", n)
	}
	t.Logf("slow client stalled after %d frames", slow.client.Sent())

	// The slow client going away ends its stream: the blocked write fails or is cut short by
	// the end of the request's context, whichever comes first.
	_ = slowConn.Close()
	err := recv(t, slow.err, "the slow client's ServeMJPEG to return")
	t.Logf("the slow client's stream ended with %v", err)
	if h.Clients() != 1 {
		t.Errorf("Clients %d after the slow client left, want 1", h.Clients())
	}
}

func TestMaxFPSCapsRate(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const frames = 60 // two seconds of a 30 fps camera
	tests := []struct {
		name   string
		step   time.Duration // between capture times
		maxFPS int
		// byClock stamps frames with the hub's fake clock rather than capture times.
		byClock bool
		want    []uint64
	}{
		{name: "5 fps by capture time", step: 33 * time.Millisecond, maxFPS: 5, want: seqs(1, 60, 6)},
		{name: "5 fps by hub clock", step: 33 * time.Millisecond, maxFPS: 5, byClock: true, want: seqs(1, 60, 6)},
		// 33 ms would be 30.3 fps, a little over twice the cap, so the odd frame more is dropped.
		{name: "15 fps", step: time.Second / 30, maxFPS: 15, want: seqs(1, 60, 2)},
		{name: "uncapped", step: 33 * time.Millisecond, maxFPS: 0, want: seqs(1, 60, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(1)
			clk := clocktesting.NewFakePassiveClock(t0)
			h.Clock = clk
			ts := startServer(t, h, tt.maxFPS)
			w := watch(t, ts)
			for i := range uint64(frames) {
				captured := t0.Add(time.Duration(i) * tt.step)
				if tt.byClock {
					captured = time.Time{}
					clk.SetTime(t0.Add(time.Duration(i) * tt.step))
				}
				h.Publish(testFrame(i+1, 1000), captured)
				// Each frame is sent or skipped before the next comes, so the client is never
				// too slow: only the cap skips frames.
				testkit.Eventually(t, hangGuard, "frame "+strconv.FormatUint(i+1, 10)+" to be handled", func() (bool, string) {
					sent, skipped := h.Sent(), h.Skipped()
					return sent+skipped == i+1, fmt.Sprintf("Sent %d, Skipped %d", sent, skipped)
				})
			}
			var got []uint64
			for range tt.want {
				got = append(got, frameSeq(recv(t, w.parts, "a frame").data))
			}
			if !slices.Equal(got, tt.want) || h.Sent() != uint64(len(tt.want)) {
				t.Errorf("client got frames %v (Sent %d), want %v", got, h.Sent(), tt.want)
			}
			if h.Skipped() != frames-uint64(len(tt.want)) {
				t.Errorf("Skipped %d, want %d", h.Skipped(), frames-len(tt.want))
			}
		})
	}
}

// seqs is from, from+step, ... up to last.
func seqs(from, last, step uint64) []uint64 {
	var s []uint64
	for n := from; n <= last; n += step {
		s = append(s, n)
	}
	return s
}

func TestCancelEndsServeMJPEG(t *testing.T) {
	t.Run("while waiting for a frame", func(t *testing.T) {
		h := NewHub(1)
		ts := startServer(t, h, 0)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		s := recv(t, ts.served, "the request")
		h.Publish(testFrame(1, frameSize), time.Time{})
		testkit.Eventually(t, hangGuard, "the frame to be sent", func() (bool, string) { return sentIs(h, 1) })

		s.cancel()
		if err := recv(t, s.err, "ServeMJPEG to return"); err != nil {
			t.Errorf("ServeMJPEG returned %v after its context ended, want nil", err)
		}
		// The response ends properly: the server wrote the end of the chunked body.
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Errorf("reading the ended response: %v", err)
		}
		if !bytes.Contains(body, testFrame(1, frameSize)) {
			t.Error("the response does not hold the frame sent before the cancel")
		}
		if h.Clients() != 0 {
			t.Errorf("Clients %d after the stream ended, want 0", h.Clients())
		}
	})

	t.Run("while blocked writing to a client that stopped reading", func(t *testing.T) {
		h := NewHub(1)
		h.WriteTimeout = time.Hour // only the cancel can end the write
		ts := startServer(t, h, 0)
		_, br := stalledClient(t, ts)
		s := recv(t, ts.served, "the request")
		// Far more than the socket buffers hold.
		h.Publish(testFrame(1, 16<<20), time.Time{})
		readUntil(t, br, "Content-Length: 16777216")
		// The part header has arrived, so the write of the frame has begun, and it cannot end
		// while the client does not read.

		s.cancel()
		if err := recv(t, s.err, "ServeMJPEG to return"); err != nil {
			t.Errorf("ServeMJPEG returned %v after its context ended, want nil", err)
		}
		if h.Sent() != 0 {
			t.Errorf("Sent %d, want 0: the frame cannot have been written", h.Sent())
		}
	})
}

// readUntil reads the raw response until s has gone by.
func readUntil(t *testing.T, br *bufio.Reader, s string) {
	t.Helper()
	var seen strings.Builder
	buf := make([]byte, 512)
	for !strings.Contains(seen.String(), s) {
		n, err := br.Read(buf)
		if err != nil {
			t.Fatalf("reading the response for %q: %v", s, err)
		}
		seen.Write(buf[:n])
	}
}

func TestWriteTimeoutDropsClientThatStopsReading(t *testing.T) {
	h := NewHub(1)
	h.WriteTimeout = 100 * time.Millisecond
	ts := startServer(t, h, 0)
	stalledClient(t, ts)
	s := recv(t, ts.served, "the request")
	h.Publish(testFrame(1, 16<<20), time.Time{})

	err := recv(t, s.err, "ServeMJPEG to give up on the client")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ServeMJPEG returned %v, want a deadline exceeded error", err)
	}
	if h.Clients() != 0 {
		t.Errorf("Clients %d after the client was dropped, want 0", h.Clients())
	}
}

func TestCloseEndsServeMJPEG(t *testing.T) {
	h := NewHub(1)
	ts := startServer(t, h, 0)
	w := watch(t, ts)
	s := recv(t, ts.served, "the request")
	h.Publish(testFrame(1, 100), time.Time{})
	recv(t, w.parts, "the frame")

	s.client.Close()
	if err := recv(t, s.err, "ServeMJPEG to return"); err != nil {
		t.Errorf("ServeMJPEG returned %v after Close, want nil", err)
	}
}

func TestServeMJPEGRefusesMisuse(t *testing.T) {
	h, other := NewHub(2), NewHub(1)
	c, err := other.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := h.ServeMJPEG(context.Background(), &discardWriter{}, c, 0); !errors.Is(err, errForeignClient) {
		t.Errorf("serving another hub's client: %v, want %v", err, errForeignClient)
	}

	mine, err := h.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- h.ServeMJPEG(ctx, &discardWriter{}, mine, 0) }()
	testkit.Eventually(t, hangGuard, "the first ServeMJPEG to start", func() (bool, string) {
		return mine.serving.Load(), "the client is not being served"
	})
	if err := h.ServeMJPEG(ctx, &discardWriter{}, mine, 0); !errors.Is(err, errClientBusy) {
		t.Errorf("serving a client twice at once: %v, want %v", err, errClientBusy)
	}
	cancel()
	if err := recv(t, ended, "the first ServeMJPEG to return"); err != nil {
		t.Errorf("first ServeMJPEG returned %v, want nil", err)
	}
}

// discardWriter is a ResponseWriter that drops what it is given, for measuring the hub
// without a network.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header {
	if d.header == nil {
		d.header = http.Header{}
	}
	return d.header
}
func (d *discardWriter) Write(p []byte) (int, error)      { return len(p), nil }
func (d *discardWriter) WriteHeader(int)                  {}
func (d *discardWriter) FlushError() error                { return nil }
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

func TestServingAllocatesNothingPerClient(t *testing.T) {
	const clients = 10
	h := NewHub(clients)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for range clients {
		c, err := h.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			if err := h.ServeMJPEG(ctx, &discardWriter{}, c, 0); err != nil {
				t.Errorf("ServeMJPEG: %v", err)
			}
		})
	}
	frame := testFrame(1, frameSize) // only read, so it may be published again
	h.Publish(frame, time.Time{})
	testkit.Eventually(t, hangGuard, "every client to get the first frame", func() (bool, string) { return sentIs(h, clients) })

	allocs := testing.AllocsPerRun(50, func() {
		want := h.Sent() + clients
		h.Publish(frame, time.Time{})
		for h.Sent() < want {
			runtime.Gosched()
		}
	})
	// Publish allocates the Frame and its wake-up channel; each client sends it without
	// allocating.
	if allocs > 2 {
		t.Errorf("%v allocations per frame sent to %d clients, want at most 2", allocs, clients)
	}
}
