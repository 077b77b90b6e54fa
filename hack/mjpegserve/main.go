// Command mjpegserve serves a generated MJPEG clip on a loopback address, as an IP camera
// would, for hack/bench-motion-vs-debian.sh: every client gets the looped clip at a fixed
// frame rate, and /stats reports how many frames each named client was sent.
//
//	mjpegserve [-listen 127.0.0.1:0] [-fps 30] [-width 640 -height 480] [-scene plain|textured]
//	mjpegserve -seconds 10 -still 5   # each loop: 5 s of an empty scene, then 5 s of motion
//	mjpegserve -write clip.mjpeg      # write the clip as concatenated JPEGs and exit
//
// Clients name themselves with ?client=NAME on /stream.mjpeg. On start it prints the
// stream URL on one line of standard output. The script of motion is known, so that a
// benchmark can tell a detector's true events from false ones:
//
//	/clip                 the clip: frames, fps, frames of the still phase, mean frame size
//	/phases?client=NAME   when each still and moving phase began for that client: the time
//	                      just before its first frame was written, and that frame's index
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
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to serve on")
	fps := flag.Int("fps", 30, "frames per second sent to each client")
	width := flag.Int("width", 640, "frame width")
	height := flag.Int("height", 480, "frame height")
	seconds := flag.Int("seconds", 10, "length of the looped clip")
	still := flag.Int("still", 5, "seconds of empty scene at the start of each loop, before the block crosses")
	quality := flag.Int("quality", 80, "JPEG quality")
	write := flag.String("write", "", "write the clip to this file as concatenated JPEGs and exit")
	scene := flag.String("scene", "plain", "plain: a smooth synthetic scene; textured: fine texture and strong sensor noise, so frames are 60-100 KB like a real camera's")
	flag.Parse()

	if *scene != "plain" && *scene != "textured" {
		log.Fatalf("-scene %q: want plain or textured", *scene)
	}
	if *still < 0 || *still >= *seconds {
		log.Fatalf("-still %d: want at least 0 and less than -seconds %d, so that each loop has motion", *still, *seconds)
	}
	n, stillFrames := *seconds**fps, *still**fps
	clip, err := render(*width, *height, n, stillFrames, *quality, *scene == "textured")
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
	total := 0
	for _, f := range clip {
		total += len(f)
	}
	s := &server{
		clip:     clip,
		info:     clipInfo{Frames: n, FPS: *fps, StillFrames: stillFrames, MeanBytes: total / n},
		interval: time.Second / time.Duration(*fps),
		clients:  map[string]*client{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream.mjpeg", s.stream)
	mux.HandleFunc("/stats", s.stats)
	mux.HandleFunc("/clip", s.clipInfo)
	mux.HandleFunc("/phases", s.phases)
	fmt.Printf("http://%s/stream.mjpeg\n", ln.Addr())
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln))
}

// render draws the clip: a background (smooth, or textured with sensor-like noise) that is
// empty for the first stillFrames frames, then a bright block crossing the frame from left
// to right until the clip ends. Each loop is then one passer-by, and the still phase after
// it, if longer than the detectors' event gap, shows whether they raise false events.
func render(w, h, n, stillFrames, quality int, textured bool) ([][]byte, error) {
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
	moving := n - stillFrames
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
		if f >= stillFrames {
			x0 := (f - stillFrames) * (w - side) / moving
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

// clipInfo is what /clip reports.
type clipInfo struct {
	Frames      int `json:"frames"`
	FPS         int `json:"fps"`
	StillFrames int `json:"stillFrames"`
	MeanBytes   int `json:"meanBytes"`
}

// phase is one entry of a client's timeline: a still or moving phase whose first frame was
// about to be written at Time, as frame Frame (from 0) of connection Conn (from 1) of that client.
type phase struct {
	Moving bool      `json:"moving"`
	Time   time.Time `json:"time"`
	Frame  int64     `json:"frame"`
	Conn   int       `json:"conn"`
}

type client struct {
	sent     int64 // frames written over every connection
	conns    int
	timeline []phase
}

type server struct {
	clip     [][]byte
	info     clipInfo
	interval time.Duration

	mu      sync.Mutex
	clients map[string]*client
}

// connect registers a new connection of the client called name and returns its number.
func (s *server) connect(name string) (*client, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[name]
	if !ok {
		c = &client{}
		s.clients[name] = c
	}
	c.conns++
	return c, c.conns
}

// phaseStart is when frame i begins a phase, or the zero time. It is read before the frame
// is written, so that no detector can see the frame at an earlier time than the timeline says.
func (s *server) phaseStart(i int64) time.Time {
	pos := int(i % int64(len(s.clip)))
	if i == 0 || pos == 0 || pos == s.info.StillFrames {
		return time.Now()
	}
	return time.Time{}
}

// sent counts frame i of connection conn as written, and notes the start of a phase.
func (s *server) sent(c *client, conn int, i int64, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.sent++
	if !start.IsZero() {
		moving := int(i%int64(len(s.clip))) >= s.info.StillFrames
		c.timeline = append(c.timeline, phase{Moving: moving, Time: start, Frame: i, Conn: conn})
	}
}

// stream sends the looped clip at the frame rate. A client that reads slower holds the
// writes back, so the count is what it actually took.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("client")
	if name == "" {
		name = r.RemoteAddr
	}
	c, conn := s.connect(name)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=BoundaryString")
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for i := int64(0); ; i++ {
		f := s.clip[i%int64(len(s.clip))]
		start := s.phaseStart(i)
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
		s.sent(c, conn, i, start)
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make(map[string]int64, len(s.clients))
	for k, c := range s.clients {
		out[k] = c.sent
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

func (s *server) clipInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.info)
}

func (s *server) phases(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var out []phase
	if c, ok := s.clients[r.URL.Query().Get("client")]; ok {
		out = append([]phase{}, c.timeline...)
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
