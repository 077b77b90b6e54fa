package stream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var benchClients = []int{1, 10, 100}

// BenchmarkFanout measures how many frames a second the hub gets to clients over loopback,
// each client a real HTTP client parsing the stream. The camera is replaced by a publisher
// that publishes the next frame as soon as any client has received the current one, so the
// clients are never starved for frames; the ns/op is per frame received by one client.
// Compare with BenchmarkFanoutBaseline. (The signal comes from the clients, not from the
// server's writes: ServeMJPEG writes parts straight to the taken-over connection, and the
// publisher writes some itself, so no ResponseWriter sees them.) hack/fanoutbench measures
// the hub behind a camera paced at 30 fps instead, with CPU time per client-frame.
func BenchmarkFanout(b *testing.B) {
	frames := [2][]byte{testFrame(1, frameSize), testFrame(2, frameSize)}
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := NewHub(n)
			received := make(chan struct{}, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for i := 0; ; i++ {
					// The two frames are only ever read, so they can be published again. The
					// first is published at once: clients that have nothing send no signal.
					h.Publish(frames[i%2], time.Now())
					select {
					case <-ctx.Done():
						return
					case <-received:
					}
				}
			}()
			published := func() uint64 { return h.latest.Load().seq }
			onPart := func() {
				select {
				case received <- struct{}{}:
				default:
				}
			}
			benchStream(b, n, published, onPart, func(w http.ResponseWriter, r *http.Request) {
				c, err := h.Subscribe()
				if err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
				defer c.Close()
				_ = h.ServeMJPEG(r.Context(), w, c, 0)
			})
		})
	}
}

// BenchmarkFanoutBaseline sends the same parts to the same number of clients with a plain
// loop per connection: write, flush, repeat. It is what the loopback and the clients allow;
// BenchmarkFanout's client-frames/s divided by this one's is the hub's efficiency.
func BenchmarkFanoutBaseline(b *testing.B) {
	frames := [2][]byte{testFrame(1, frameSize), testFrame(2, frameSize)}
	header := []byte("Content-Type: image/jpeg\r\nContent-Length: " + strconv.Itoa(frameSize) + "\r\n\r\n")
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			benchStream(b, n, nil, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ContentType)
				rc := http.NewResponseController(w)
				if _, err := w.Write(delimiter[2:]); err != nil {
					return
				}
				for i := 0; r.Context().Err() == nil; i++ {
					for _, p := range [][]byte{header, frames[i%2], delimiter} {
						if _, err := w.Write(p); err != nil {
							return
						}
					}
					if rc.Flush() != nil {
						return
					}
				}
			})
		})
	}
}

// benchStream serves handler to n clients and times b.N frames received, counted over all
// clients; onPart, if not nil, is called for each. published, if not nil, counts the frames
// published, reported per frame received: the publisher publishes on nearly every part
// received, many more frames than a camera makes, which is the worst case for the hub.
func benchStream(b *testing.B, n int, published func() uint64, onPart func(), handler http.HandlerFunc) {
	ts := httptest.NewServer(handler)
	defer ts.Close()
	defer ts.CloseClientConnections()
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	ctx, cancel := context.WithCancel(context.Background())
	var (
		received atomic.Int64
		goal     atomic.Int64
		reached  = make(chan struct{})
		once     sync.Once
		started  sync.WaitGroup
		wg       sync.WaitGroup
	)
	goal.Store(math.MaxInt64)
	started.Add(n)
	for range n {
		wg.Go(func() {
			first := true
			err := readParts(ctx, client, ts.URL, func() {
				if first {
					first = false
					started.Done()
				}
				if onPart != nil {
					onPart()
				}
				if received.Add(1) >= goal.Load() {
					once.Do(func() { close(reached) })
				}
			})
			if first {
				started.Done()
				b.Errorf("client ended before its first frame: %v", err)
			}
		})
	}
	started.Wait()

	b.SetBytes(frameSize)
	var pub0 uint64
	if published != nil {
		pub0 = published()
	}
	b.ResetTimer()
	goal.Store(received.Load() + int64(b.N))
	if received.Load() < goal.Load() {
		<-reached
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "client-frames/s")
	if published != nil {
		b.ReportMetric(float64(published()-pub0)/float64(b.N), "publishes/op")
	}
	cancel()
	wg.Wait()
}

// readParts reads an MJPEG stream, calling got for each part, until ctx ends. It reads only
// what it must (part headers, then Content-Length bytes), so that the benchmark's clients
// cost little next to the server.
func readParts(ctx context.Context, client *http.Client, url string, got func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(line, []byte("Content-Length: ")):
			length, err = strconv.Atoi(string(bytes.TrimSpace(line[len("Content-Length: "):])))
			if err != nil {
				return err
			}
		case len(bytes.TrimSpace(line)) == 0 && length >= 0:
			if _, err := br.Discard(length); err != nil {
				return err
			}
			length = -1
			got()
		}
	}
}
