// Command mjpegserve serves a generated MJPEG clip on a loopback address, as an IP camera
// would, for hack/bench-motion-vs-debian.sh: every client gets the looped clip at a fixed
// frame rate, and /stats reports how many frames each named client was sent.
//
//	mjpegserve [-listen 127.0.0.1:0] [-fps 30] [-width 640 -height 480]
//	mjpegserve -write clip.mjpeg   # write the clip as concatenated JPEGs and exit
//
// Clients name themselves with ?client=NAME on /stream.mjpeg. On start it prints the
// stream URL on one line of standard output.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to serve on")
	fps := flag.Int("fps", 30, "frames per second sent to each client")
	width := flag.Int("width", 640, "frame width")
	height := flag.Int("height", 480, "frame height")
	seconds := flag.Int("seconds", 6, "length of the looped clip")
	quality := flag.Int("quality", 80, "JPEG quality")
	write := flag.String("write", "", "write the clip to this file as concatenated JPEGs and exit")
	scene := flag.String("scene", "plain", "plain: a smooth synthetic scene; textured: fine texture and strong sensor noise, so frames are 60-100 KB like a real camera's")
	flag.Parse()

	if *scene != "plain" && *scene != "textured" {
		log.Fatalf("-scene %q: want plain or textured", *scene)
	}
	clip, err := render(*width, *height, *seconds**fps, *quality, *scene == "textured")
	if err != nil {
		log.Fatalf("render clip: %v", err)
	}
	if *write != "" {
		if err := os.WriteFile(*write, bytes.Join(clip, nil), 0o644); err != nil {
			log.Fatalf("write clip: %v", err)
		}
		return
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("listen address %q is not a loopback address", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	s := &server{clip: clip, interval: time.Second / time.Duration(*fps), counts: map[string]*atomic.Int64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream.mjpeg", s.stream)
	mux.HandleFunc("/stats", s.stats)
	fmt.Printf("http://%s/stream.mjpeg\n", ln.Addr())
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln))
}

// render draws the clip: a textured background with sensor-like noise, and a bright block
// crossing the frame in the middle two thirds of the clip, so a detector has events to find.
func render(w, h, n, quality int, textured bool) ([][]byte, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 120, 136
	}
	side := h / 4
	var texture [64 * 64]uint8
	for i := range texture {
		texture[i] = uint8(rng.IntN(50))
	}
	var clip [][]byte
	for f := 0; f < n; f++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 70 + (x/4+y/3)%60 + rng.IntN(9) - 4
				if textured {
					// Gravel, leaves, brick: fine detail the encoder cannot smooth away, and
					// sensor noise that changes every frame.
					v = 40 + int(texture[(y%64)*64+x%64]) + (x/16+y/16)%4*20 + rng.IntN(11) - 5
				}
				img.Y[y*img.YStride+x] = uint8(min(max(v, 0), 255))
			}
		}
		// The block is in frames [n/6, 5n/6): the clip starts and ends on an empty scene, so
		// every loop is one event, as a passer-by would be.
		if f >= n/6 && f < 5*n/6 {
			x0 := (f - n/6) * (w - side) / (2 * n / 3)
			for y := h / 3; y < h/3+side; y++ {
				for x := x0; x < x0+side; x++ {
					img.Y[y*img.YStride+x] = 235
				}
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
			return nil, err
		}
		clip = append(clip, buf.Bytes())
	}
	return clip, nil
}

type server struct {
	clip     [][]byte
	interval time.Duration
	mu       sync.Mutex
	counts   map[string]*atomic.Int64
}

func (s *server) counter(name string) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counts[name]
	if !ok {
		c = new(atomic.Int64)
		s.counts[name] = c
	}
	return c
}

// stream sends the looped clip at the frame rate. A client that reads slower holds the
// writes back, so the count is what it actually took.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("client")
	if name == "" {
		name = r.RemoteAddr
	}
	count := s.counter(name)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=BoundaryString")
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		f := s.clip[i%len(s.clip)]
		if _, err := fmt.Fprintf(w, "--BoundaryString\r\nContent-type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(f)); err != nil {
			return
		}
		if _, err := w.Write(f); err != nil {
			return
		}
		if _, err := w.Write([]byte("\r\n")); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		count.Add(1)
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make(map[string]int64, len(s.counts))
	for k, v := range s.counts {
		out[k] = v.Load()
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
