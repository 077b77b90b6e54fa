package stream

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"testing"
	"time"
)

const frameSize = 80 << 10

// hangGuard only ends a test that would otherwise hang; no assertion depends on it.
const hangGuard = 20 * time.Second

// testFrame is frame n's bytes: its first 8 bytes are n, the rest a pattern that differs
// from one frame to the next, so a client can tell frames apart and check them byte for byte.
func testFrame(n uint64, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, n)
	for i := 8; i < size; i++ {
		b[i] = byte(uint64(i)*7 + n)
	}
	return b
}

func frameSeq(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// served is one request the test server is handling.
type served struct {
	client *Client
	// cancel ends the context ServeMJPEG was given.
	cancel context.CancelFunc
	// err receives what ServeMJPEG returned, after the client was closed.
	err chan error
}

type testServer struct {
	*httptest.Server
	served chan *served
}

// startServer serves hub h at "/" as the agent's HTTP layer would: 503 when full, otherwise
// an MJPEG stream capped at maxFPS.
func startServer(t *testing.T, h *Hub, maxFPS int) *testServer {
	t.Helper()
	// Small socket buffers, so that a client that stops reading blocks the server's writes
	// within a frame or two rather than after the tens of megabytes loopback may buffer.
	return startServerBuffered(t, h, maxFPS, 32<<10)
}

// startServerBuffered is startServer with the server's socket send buffer set to sndbuf
// bytes; 0 leaves the system's.
func startServerBuffered(t *testing.T, h *Hub, maxFPS, sndbuf int) *testServer {
	t.Helper()
	ts := &testServer{served: make(chan *served, 16)}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.Subscribe()
		if errors.Is(err, ErrTooManyClients) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		s := &served{client: c, cancel: cancel, err: make(chan error, 1)}
		ts.served <- s
		err = h.ServeMJPEG(ctx, w, c, maxFPS)
		c.Close()
		s.err <- err
	}))
	ts.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && st == http.StateNew && sndbuf > 0 {
			_ = tc.SetWriteBuffer(sndbuf)
		}
	}
	ts.Start()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts
}

// recv receives from ch, failing the test if ch is closed or nothing comes.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(hangGuard):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// sentIs is whether the hub has counted want frames sent, and how many it has: a condition
// for testkit.Eventually.
func sentIs(h *Hub, want uint64) (bool, string) {
	n := h.Sent()
	return n == want, fmt.Sprintf("Sent %d, want %d", n, want)
}

type gotPart struct {
	header textproto.MIMEHeader
	data   []byte
}

// watcher is a real HTTP client reading an MJPEG stream with mime/multipart.
type watcher struct {
	resp  *http.Response
	parts chan gotPart
	// err is why the stream ended; read it after parts is closed.
	err error
}

func watch(t *testing.T, ts *testServer) *watcher {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200", resp.Status)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: want multipart/x-mixed-replace with a boundary", resp.Header.Get("Content-Type"))
	}
	w := &watcher{resp: resp, parts: make(chan gotPart, 256)}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	go func() {
		defer close(w.parts)
		for {
			p, err := mr.NextPart()
			if err != nil {
				w.err = err
				return
			}
			data, err := io.ReadAll(p)
			if err != nil {
				w.err = err
				return
			}
			w.parts <- gotPart{header: p.Header, data: data}
		}
	}()
	return w
}

// stalledClient is a raw HTTP client that reads the response headers and then nothing, with
// a small receive buffer so that the server's writes to it soon block.
func stalledClient(t *testing.T, ts *testServer) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ts.Listener.Addr()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200", resp.Status)
	}
	return conn, br
}
