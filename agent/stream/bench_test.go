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
// that publishes the next frame as soon as any client has flushed the current one, so the
// clients are never starved for frames; the ns/op is per frame received by one client.
// Compare with BenchmarkFanoutBaseline.
func BenchmarkFanout(b *testing.B) {
	frames := [2][]byte{testFrame(1, frameSize), testFrame(2, frameSize)}
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := NewHub(n)
			flushed := make(chan struct{}, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-flushed:
					}
					// The two frames are only ever read, so they can be published again.
					h.Publish(frames[i%2], time.Now())
				}
			}()
			published := func() uint64 { return h.latest.Load().seq }
			benchStream(b, n, published, func(w http.ResponseWriter, r *http.Request) {
				c, err := h.Subscribe()
				if err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
				defer c.Close()
				_ = h.ServeMJPEG(r.Context(), flushSignal{w, flushed}, c, 0)
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
			benchStream(b, n, nil, func(w http.ResponseWriter, r *http.Request) {
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

// flushSignal tells the benchmark's publisher that a client has flushed a part and is ready
// for the next frame.
type flushSignal struct {
	http.ResponseWriter
	flushed chan<- struct{}
}

func (f flushSignal) FlushError() error {
	err := f.ResponseWriter.(interface{ FlushError() error }).FlushError()
	select {
	case f.flushed <- struct{}{}:
	default:
	}
	return err
}

func (f flushSignal) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// benchStream serves handler to n clients and times b.N frames received, counted over all
// clients. published, if not nil, counts the frames published, reported per frame received:
// the publisher publishes on nearly every flush, many more frames than a camera makes, which
// is the worst case for the hub.
func benchStream(b *testing.B, n int, published func() uint64, handler http.HandlerFunc) {
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
