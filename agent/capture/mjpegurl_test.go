package capture

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"
)

func testJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.SetGray(0, 0, color.Gray{Y: 255})
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// part is one multipart/x-mixed-replace part as cameras send it, with or without its
// Content-Length.
func part(data []byte, withLength bool) []byte {
	var b bytes.Buffer
	b.WriteString("--frame\r\nContent-Type: image/jpeg\r\n")
	if withLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(data))
	}
	b.WriteString("\r\n")
	b.Write(data)
	b.WriteString("\r\n")
	return b.Bytes()
}

const multipartType = "multipart/x-mixed-replace; boundary=frame"

// collect runs s until it returns and gives the sizes of the frames it delivered.
func collect(t *testing.T, ctx context.Context, s *MJPEGURL) ([]image.Point, error) {
	t.Helper()
	var sizes []image.Point
	err := s.Run(ctx, func(f Frame) {
		if f.Format != FormatMJPEG || f.Stride != 0 {
			t.Errorf("frame is %s with stride %d, want MJPEG and 0", f.Format, f.Stride)
		}
		w, h, err := jpegSize(f.Data)
		if err != nil || w != f.Width || h != f.Height {
			t.Errorf("frame says %dx%d, its data %dx%d (%v)", f.Width, f.Height, w, h, err)
		}
		sizes = append(sizes, image.Pt(f.Width, f.Height))
	})
	return sizes, err
}

func TestMJPEGURLStreams(t *testing.T) {
	small, other, big := testJPEG(t, 64, 48), testJPEG(t, 40, 24), testJPEG(t, 320, 240)
	badMarker := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 'x'} // a segment length under 2
	cases := []struct {
		name        string
		contentType string
		body        [][]byte
		maxFrame    int
		want        []image.Point
		skipped     int64
	}{
		{"multipart with lengths", multipartType, [][]byte{part(small, true), part(other, true), part(big, true)}, 0,
			[]image.Point{{64, 48}, {40, 24}, {320, 240}}, 0},
		{"multipart without lengths", multipartType, [][]byte{part(small, false), part(big, false)}, 0,
			[]image.Point{{64, 48}, {320, 240}}, 0},
		{"concatenated JPEGs", "image/jpeg", [][]byte{small, other, small}, 0,
			[]image.Point{{64, 48}, {40, 24}, {64, 48}}, 0},
		{"garbage part, then good parts", multipartType, [][]byte{part([]byte("<html>not a picture</html>"), true), part(small, true), part(other, true)}, 0,
			[]image.Point{{64, 48}, {40, 24}}, 1},
		{"malformed JPEG, then good parts", multipartType, [][]byte{part(badMarker, false), part(small, false), part(other, false)}, 0,
			[]image.Point{{64, 48}, {40, 24}}, 1},
		{"JPEG cut before its frame header, then good parts", multipartType, [][]byte{part(small[:20], true), part(small, true)}, 0,
			[]image.Point{{64, 48}}, 1},
		{"oversized part skipped", multipartType, [][]byte{part(small, true), part(big, true), part(other, true)}, len(big) - 1,
			[]image.Point{{64, 48}, {40, 24}}, 1},
		{"oversized frame without length skipped", multipartType, [][]byte{part(small, false), part(big, false), part(other, false)}, len(big) - 1,
			[]image.Point{{64, 48}, {40, 24}}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", c.contentType)
				_, _ = w.Write(bytes.Join(c.body, nil))
			}))
			defer srv.Close()
			s := &MJPEGURL{URL: srv.URL + "/video", Client: srv.Client(), MaxFrame: c.maxFrame}
			got, err := collect(t, context.Background(), s)
			if ReasonOf(err) != ReasonDisconnected {
				t.Fatalf("Run returned %v, want Disconnected at the end of the stream", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("frames %v, want %v", got, c.want)
			}
			if s.Skipped() != c.skipped {
				t.Fatalf("%d parts skipped, want %d", s.Skipped(), c.skipped)
			}
		})
	}
}

// hangingServer sends the response headers and the given bytes, then holds the connection
// open without sending more until the client goes away or the test ends. Its channel
// receives each request as it arrives.
func hangingServer(t *testing.T, headers bool, body []byte) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	reached := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reached <- struct{}{}:
		default:
		}
		if headers {
			w.Header().Set("Content-Type", multipartType)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, so Close does not wait on the handler
	return srv, reached
}

func TestMJPEGURLWatchdog(t *testing.T) {
	frame := testJPEG(t, 64, 48)
	cases := []struct {
		name    string
		headers bool
		body    []byte
		frames  int
		reason  Reason
		message string
	}{
		{"stream stops after a frame", true, part(frame, true), 1, ReasonStalled, "sent no frame within 200ms"},
		{"stream stalls before the first frame", true, nil, 0, ReasonStalled, "sent no frame within 200ms"},
		{"only a malformed part, then nothing", true, part([]byte("garbage"), true), 0, ReasonBadStream, "the last 1 parts were malformed"},
		{"no response at all", false, nil, 0, ReasonConnectFailed, "sent no response within 200ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := hangingServer(t, c.headers, c.body)
			s := &MJPEGURL{URL: srv.URL, Client: srv.Client(), StallTimeout: 200 * time.Millisecond}
			got, err := collect(t, context.Background(), s)
			if ReasonOf(err) != c.reason || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("Run returned %v, want %s saying %q", err, c.reason, c.message)
			}
			if len(got) != c.frames {
				t.Fatalf("%d frames delivered, want %d", len(got), c.frames)
			}
		})
	}
}

// TestMJPEGURLSlowDeliverIsNotAStall holds deliver past the stall timeout, on a fake clock:
// the receiver's time is not the camera's, so the run goes on to the next frame.
func TestMJPEGURLSlowDeliverIsNotAStall(t *testing.T) {
	frame := testJPEG(t, 64, 48)
	second := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", multipartType)
		_, _ = w.Write(part(frame, true))
		w.(http.Flusher).Flush()
		select {
		case <-second:
			_, _ = w.Write(part(frame, true))
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	clk := testclock.NewFakeClock(epoch)
	s := &MJPEGURL{URL: srv.URL, Client: srv.Client(), StallTimeout: time.Second, Clock: clk}
	frames := 0
	err := s.Run(context.Background(), func(Frame) {
		frames++
		if frames == 1 {
			for !clk.HasWaiters() { // the watchdog's timer
				runtime.Gosched()
			}
			clk.Step(5 * time.Second)
			close(second)
		}
	})
	if ReasonOf(err) != ReasonDisconnected || frames != 2 {
		t.Fatalf("Run returned %v after %d frames, want Disconnected after 2", err, frames)
	}
}

func TestMJPEGURLConnectFailures(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	withSecret := func(u string) string { return strings.Replace(u, "http://", "http://admin:s3cret@", 1) }
	cases := []struct {
		name   string
		url    string
		reason Reason
	}{
		{"not found", withSecret(srv.URL) + "/missing", ReasonConnectFailed},
		{"connection refused", withSecret(closed.URL) + "/video", ReasonConnectFailed},
		{"a file, not a URL", "/dev/video0", ReasonUnsupported},
		{"another scheme", "rtsp://admin:s3cret@camera/stream", ReasonUnsupported},
		{"unparsable", "http://admin:s3cret@camera:port/\x7f", ReasonConnectFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &MJPEGURL{URL: c.url, Client: srv.Client()}
			err := s.Run(context.Background(), func(Frame) { t.Error("delivered a frame") })
			if ReasonOf(err) != c.reason {
				t.Fatalf("Run returned %v, want %s", err, c.reason)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the URL's password: %v", err)
			}
		})
	}
}

func TestMJPEGURLReturnsNilWhenCancelled(t *testing.T) {
	frame := testJPEG(t, 64, 48)
	cases := []struct {
		name    string
		headers bool
		body    []byte
	}{
		{"while streaming", true, part(frame, true)},
		{"while connecting", false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, reached := hangingServer(t, c.headers, c.body)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &MJPEGURL{URL: srv.URL, Client: srv.Client()}
			if !c.headers {
				go func() {
					<-reached // the handler has the request and will never answer
					cancel()
				}()
			}
			err := s.Run(ctx, func(Frame) { cancel() })
			if err != nil {
				t.Fatalf("Run returned %v, want nil", err)
			}
		})
	}
}

func TestJPEGSize(t *testing.T) {
	sof := func(code byte, w, h int) []byte {
		return []byte{0xFF, code, 0x00, 0x0B, 0x08, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 0x01, 0x01, 0x11, 0x00}
	}
	soi := []byte{0xFF, 0xD8}
	app0 := []byte{0xFF, 0xE0, 0x00, 0x04, 'J', 'F'}
	dht := []byte{0xFF, 0xC4, 0x00, 0x03, 0x00}
	sos := []byte{0xFF, 0xDA, 0x00, 0x02}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		data []byte
		w, h int
		ok   bool
	}{
		{"encoded gray", testJPEG(t, 64, 48), 64, 48, true},
		{"encoded colour, odd size", testPatternJPEG(t, 33, 17), 33, 17, true},
		{"progressive", join(soi, app0, sof(0xC2, 1920, 1080), sos), 1920, 1080, true},
		{"DHT before the frame header", join(soi, dht, sof(0xC0, 100, 50)), 100, 50, true},
		{"fill bytes before a marker", join(soi, []byte{0xFF, 0xFF}, sof(0xC1, 8, 8)), 8, 8, true},
		{"restart-like marker without length", join(soi, []byte{0xFF, 0xD0}, sof(0xC0, 8, 8)), 8, 8, true},
		{"empty", nil, 0, 0, false},
		{"not a JPEG", []byte("<html></html>"), 0, 0, false},
		{"scan before the frame header", join(soi, app0, sos, sof(0xC0, 8, 8)), 0, 0, false},
		{"end of image before the frame header", join(soi, []byte{0xFF, 0xD9}), 0, 0, false},
		{"cut inside a segment", join(soi, app0[:5]), 0, 0, false},
		{"cut inside the frame header", join(soi, sof(0xC0, 8, 8)[:8]), 0, 0, false},
		{"segment length under 2", join(soi, []byte{0xFF, 0xE0, 0x00, 0x01}), 0, 0, false},
		{"no marker where one belongs", join(soi, []byte{0x12, 0x34}), 0, 0, false},
		{"zero height (given later by DNL)", join(soi, sof(0xC0, 8, 0)), 0, 0, false},
		{"only fill bytes", join(soi, []byte{0xFF, 0xFF}), 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, h, err := jpegSize(c.data)
			if (err == nil) != c.ok || w != c.w || h != c.h {
				t.Fatalf("jpegSize = %dx%d, %v; want %dx%d, ok %v", w, h, err, c.w, c.h, c.ok)
			}
		})
	}
}

// testPatternJPEG is a colour (4:2:0) JPEG, as cameras send.
func testPatternJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	data, err := newPatternRenderer(TestPattern{Width: w, Height: h}.withDefaults()).render(0, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
