// Command fanoutbench measures the agent's MJPEG fan-out (agent/stream) over real HTTP on
// 127.0.0.1 and writes the `make bench` part fanout.json. One 640x480 camera at 30 fps
// (textured JPEG frames of about 80 KB, like a real camera's) streams to 1, 10, 100 and 300
// clients: client-frames delivered per second and per CPU-second of the server, against a
// plain writer that sends the same bytes at the same pace to the same number of clients (one
// goroutine per connection writing each part straight to the socket; the floor for this
// machine). Then ten clients watch the hub, one of which reads a frame a second through a
// small receive buffer: the other nine's frame rate with and without it.
//
//	go run ./hack/fanoutbench                                # about 2.5 minutes
//	go run ./hack/fanoutbench -rounds 1 -duration 2s -out /tmp/parts
//
// The server is the real stream.Hub served as the agent's API serves a stream (Subscribe,
// then ServeMJPEG on the request); the camera is a goroutine publishing the next frame every
// 1/30 s. The clients run in a child process (this program started again with -load) and
// parse the multipart stream, so the CPU time of this process, read with getrusage over each
// interval, is the server's alone. Frames are counted as the server finishes writing them to
// a client's socket. Hub and plain writer alternate within every round, so each ratio
// compares two runs measured seconds apart on this shared, noisy machine.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/camfleet/camfleet/agent/stream"
	"github.com/camfleet/camfleet/internal/benchresult"
)

const (
	width, height = 640, 480
	// slowRcvBuf is the slow client's socket receive buffer: a frame or two rather than the
	// tens of megabytes loopback lets it grow to, so that the client holds back the server
	// as a slow phone on a poor link would.
	slowRcvBuf = 128 << 10
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds, each measuring every case once")
	duration := flag.Duration("duration", 3*time.Second, "measured interval per case and round")
	warmup := flag.Duration("warmup", time.Second, "streaming after all clients connected, before the interval")
	counts := flag.String("clients", "1,10,100,300", "client counts, comma-separated")
	fps := flag.Int("fps", 30, "camera frame rate")
	slowOf := flag.Int("slow-of", 10, "clients in the slow-client case, one of them slow; 0 skips the case")
	out := flag.String("out", "bin/bench", "results directory")
	load := flag.String("load", "", "internal: act as the clients against this URL")
	n := flag.Int("n", 1, "internal: clients of -load")
	slow := flag.Bool("slow", false, "internal: client 0 of -load reads one frame a second")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("fanoutbench: ")

	if *load != "" {
		log.Fatal(runClients(*load, *n, *slow))
	}
	var clients []int
	for f := range strings.SplitSeq(*counts, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			log.Fatalf("bad client count %q", f)
		}
		clients = append(clients, c)
	}
	b := &bench{frames: makeFrames(4), fps: *fps, duration: *duration, warmup: *warmup}
	p, err := b.run(*rounds, clients, *slowOf)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Save(*out, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// makeFrames encodes n different textured 640x480 pictures as image/jpeg quality 80 4:2:0,
// which come out near 80 KB: fine texture and sensor noise as a real camera's have, not the
// few KB of a smooth synthetic picture.
func makeFrames(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for k := range n {
		img := image.NewYCbCr(image.Rect(0, 0, width, height), image.YCbCrSubsampleRatio420)
		for y := range height {
			for x := range width {
				v := 110 + 50*math.Sin(float64(x+3*k)/5)*math.Cos(float64(y)/4) + rng.NormFloat64()*6
				img.Y[y*img.YStride+x] = uint8(min(max(v, 0), 255))
			}
		}
		for i := range img.Cb {
			img.Cb[i] = uint8(128 + rng.IntN(9) - 4)
			img.Cr[i] = uint8(128 + rng.IntN(9) - 4)
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
			log.Fatalf("encode a frame: %v", err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

type bench struct {
	frames   [][]byte
	fps      int
	duration time.Duration
	warmup   time.Duration
}

// sample is one measured interval.
type sample struct {
	wall, cpu time.Duration
	// perClient is the frames each client got over the interval, by client index.
	perClient []uint64
}

func (s sample) total() uint64 {
	var t uint64
	for _, n := range s.perClient {
		t += n
	}
	return t
}

func (s sample) clientFramesPerSec() float64 { return float64(s.total()) / s.wall.Seconds() }
func (s sample) perCPUSecond() float64       { return float64(s.total()) / s.cpu.Seconds() }

// fps is the frame rate of each client in ids, over the interval.
func (s sample) fps(ids []int) []float64 {
	var out []float64
	for _, i := range ids {
		out = append(out, float64(s.perClient[i])/s.wall.Seconds())
	}
	return out
}

func mean(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

const (
	modeHub   = "hub"
	modePlain = "plain"
)

func (b *bench) run(rounds int, clients []int, slowOf int) (benchresult.Part, error) {
	type key struct {
		mode string
		n    int
	}
	results := map[key][]sample{}
	var withSlow, withoutSlow []sample
	for round := range rounds {
		for _, n := range clients {
			modes := []string{modeHub, modePlain}
			if round%2 == 1 {
				modes = []string{modePlain, modeHub}
			}
			for _, mode := range modes {
				s, err := b.measure(mode, n, false)
				if err != nil {
					return benchresult.Part{}, fmt.Errorf("%s, %d clients, round %d: %w", mode, n, round+1, err)
				}
				log.Printf("round %d: %s, %d clients: %.0f client-frames/s, %.0f per CPU-second, %.1f fps a client",
					round+1, mode, n, s.clientFramesPerSec(), s.perCPUSecond(), s.clientFramesPerSec()/float64(n))
				results[key{mode, n}] = append(results[key{mode, n}], s)
			}
		}
		if slowOf < 2 {
			continue
		}
		for k := range 2 {
			slow := (k+round)%2 == 1
			s, err := b.measure(modeHub, slowOf, slow)
			if err != nil {
				return benchresult.Part{}, fmt.Errorf("hub, %d clients, slow %v, round %d: %w", slowOf, slow, round+1, err)
			}
			log.Printf("round %d: hub, %d clients, one slow %v: the others %.1f fps", round+1, slowOf, slow, mean(s.fps(others(slowOf))))
			if slow {
				withSlow = append(withSlow, s)
			} else {
				withoutSlow = append(withoutSlow, s)
			}
		}
	}

	p := benchresult.Part{
		Name:    "fanout",
		Title:   "Stream fan-out",
		Command: "hack/bench-fanout.sh",
		Method: fmt.Sprintf("One camera publishing a %dx%d JPEG (image/jpeg quality 80, textured with noise, %d-%d KB) "+
			"every 1/%d s into the agent's stream.Hub, served over HTTP on 127.0.0.1 as the agent serves a stream "+
			"(Subscribe, ServeMJPEG), to clients in a child process that parse the multipart stream. The baseline, "+
			"the floor for this machine, is a plain writer: one goroutine per connection that takes the connection "+
			"over and writes the same part header, JPEG and boundary to it every 1/%d s. Client-frames are counted "+
			"as the server finishes writing them; CPU is this process's user+system time (getrusage) over the same "+
			"%s interval, after %s of streaming, so it is the server's and the camera goroutine's, not the clients'. "+
			"Hub and plain writer alternate within each of %d rounds; each ratio is taken within a round. "+
			"In the slow-client case %d clients watch the hub, and in every other run client 0 reads one frame a "+
			"second through a %d KiB receive buffer; the interval starts once the socket buffers between it "+
			"and the server are full (the server's writes to it have stalled), which on loopback holds a few megabytes, "+
			"so its own rate is not measured: the server finishes a part for it only every several seconds.",
			width, height, minLen(b.frames)>>10, maxLen(b.frames)>>10, b.fps, b.fps, b.duration, b.warmup, rounds, slowOf, slowRcvBuf>>10),
	}

	t := benchresult.Table{
		Title: "Client-frames per second and per CPU-second of the server",
		Columns: []string{"clients", "hub client-frames/s (median)", "hub fps a client (median)", "plain fps a client (median)",
			"hub per CPU-s (median)", "plain per CPU-s (median)", "hub/plain per CPU-s, min", "median", "max"},
	}
	plot := benchresult.Plot{File: "fanout.svg", Title: "Stream fan-out, 30 fps camera: client-frames per CPU-second of the server",
		Kind: benchresult.Bars, XLabel: "clients", YLabel: "client-frames per CPU-second",
		Series: []benchresult.Series{{Name: "stream.Hub"}, {Name: "plain writer"}}}
	for _, n := range clients {
		hub, plain := results[key{modeHub, n}], results[key{modePlain, n}]
		hubCPU := benchresult.Summarize(mapSamples(hub, sample.perCPUSecond))
		plainCPU := benchresult.Summarize(mapSamples(plain, sample.perCPUSecond))
		var ratios []float64
		for i := range min(len(hub), len(plain)) {
			ratios = append(ratios, hub[i].perCPUSecond()/plain[i].perCPUSecond())
		}
		perClient := func(s sample) float64 { return s.clientFramesPerSec() / float64(n) }
		row := []string{strconv.Itoa(n),
			benchresult.F(benchresult.Summarize(mapSamples(hub, sample.clientFramesPerSec)).Median, 0),
			benchresult.F(benchresult.Summarize(mapSamples(hub, perClient)).Median, 1),
			benchresult.F(benchresult.Summarize(mapSamples(plain, perClient)).Median, 1),
			benchresult.F(hubCPU.Median, 0), benchresult.F(plainCPU.Median, 0)}
		t.Rows = append(t.Rows, append(row, benchresult.Summarize(ratios).Cells(2)...))
		plot.Categories = append(plot.Categories, strconv.Itoa(n))
		plot.Series[0].Y = append(plot.Series[0].Y, hubCPU.Median)
		plot.Series[1].Y = append(plot.Series[1].Y, plainCPU.Median)
	}
	p.Tables = append(p.Tables, t)
	p.Plots = append(p.Plots, plot)
	p.Notes = append(p.Notes, fmt.Sprintf("At %d fps a client, n clients can get at most %d·n client-frames a second; "+
		"where both rates are below that, the machine (server and clients share its cores) is the limit, and the per "+
		"CPU-second figures compare the two at whatever rate each reached. A ratio above 1 means the hub spends "+
		"less CPU per client-frame than the plain writer, whose goroutines each wake on a timer of their own for "+
		"every frame, where the hub's publisher wakes its clients with one channel close and writes to the first "+
		"few waiting ones itself (agent/stream/inline.go).", b.fps, b.fps))

	if slowOf >= 2 && len(withSlow) > 0 && len(withoutSlow) > 0 {
		ids := others(slowOf)
		st := benchresult.Table{
			Title:   fmt.Sprintf("%d clients on the hub, %d of them reading at full speed: their frames per second", slowOf, slowOf-1),
			Columns: []string{"case", "rounds", "others' mean fps, min", "median", "max", "slowest other fps (median)"},
		}
		var ratios []float64
		for i := range min(len(withSlow), len(withoutSlow)) {
			ratios = append(ratios, mean(withSlow[i].fps(ids))/mean(withoutSlow[i].fps(ids)))
		}
		for _, c := range []struct {
			name string
			s    []sample
		}{{"all read at full speed", withoutSlow}, {"client 0 reads 1 frame a second", withSlow}} {
			m := benchresult.Summarize(mapSamples(c.s, func(s sample) float64 { return mean(s.fps(ids)) }))
			slowest := benchresult.Summarize(mapSamples(c.s, func(s sample) float64 { return slices.Min(s.fps(ids)) }))
			row := append([]string{c.name, strconv.Itoa(m.N)}, m.Cells(1)...)
			st.Rows = append(st.Rows, append(row, benchresult.F(slowest.Median, 1)))
		}
		r := benchresult.Summarize(ratios)
		st.Rows = append(st.Rows, append([]string{"others' fps, with / without the slow client", strconv.Itoa(r.N)}, append(r.Cells(3), "")...))
		p.Tables = append(p.Tables, st)
		p.Targets = append(p.Targets, benchresult.Target{
			What: "a slow client does not lower the others' rate: their mean fps with it / without it, median of rounds",
			Want: ">= 0.95",
			Got:  benchresult.F(r.Median, 3) + " (min " + benchresult.F(r.Min, 3) + ")",
			Met:  r.Median >= 0.95,
		})
	}
	return p, nil
}

func others(n int) []int {
	var ids []int
	for i := 1; i < n; i++ {
		ids = append(ids, i)
	}
	return ids
}

func mapSamples(ss []sample, f func(sample) float64) []float64 {
	var out []float64
	for _, s := range ss {
		out = append(out, f(s))
	}
	return out
}

func minLen(bs [][]byte) int {
	m := len(bs[0])
	for _, b := range bs {
		m = min(m, len(b))
	}
	return m
}

func maxLen(bs [][]byte) int {
	m := 0
	for _, b := range bs {
		m = max(m, len(b))
	}
	return m
}

// server is one measured server: the hub or the plain writer, with a frame counter per client.
type server struct {
	mu     sync.Mutex
	counts map[int]func() uint64
}

func (s *server) register(id int, count func() uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[id] = count
}

// snapshot returns the frames sent to each of n clients, and whether all n are connected.
func (s *server) snapshot(n int) ([]uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, n)
	for i := range n {
		c, ok := s.counts[i]
		if !ok {
			return nil, false
		}
		out[i] = c()
	}
	return out, true
}

// measure serves n clients in the given mode and measures one interval.
func (b *bench) measure(mode string, n int, slow bool) (sample, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &server{counts: map[int]func() uint64{}}
	var handler http.HandlerFunc
	switch mode {
	case modeHub:
		handler = b.hubHandler(ctx, srv, n)
	case modePlain:
		handler = b.plainHandler(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sample{}, fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	self, err := os.Executable()
	if err != nil {
		return sample{}, fmt.Errorf("find this program: %w", err)
	}
	cmd := exec.Command(self, "-load", "http://"+ln.Addr().String()+"/stream", "-n", strconv.Itoa(n), "-slow="+strconv.FormatBool(slow))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("start the clients: %w", err)
	}
	// exited is closed when the clients' process has ended, with waitErr set: receiving from
	// it never blocks twice, so the deferred stop is safe after an early return.
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := srv.snapshot(n); ok {
			break
		}
		select {
		case <-exited:
			return sample{}, fmt.Errorf("the clients ended: %w", waitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return sample{}, errors.New("not all clients connected within 30s")
		}
	}
	time.Sleep(b.warmup)
	if slow {
		if err := b.awaitSlowClient(srv, n); err != nil {
			return sample{}, err
		}
	}
	c0, cpu0, t0 := mustSnapshot(srv, n), cpuTime(), time.Now()
	time.Sleep(b.duration)
	c1, cpu1, t1 := mustSnapshot(srv, n), cpuTime(), time.Now()
	select {
	case <-exited:
		return sample{}, fmt.Errorf("the clients ended during the interval: %w", waitErr)
	default:
	}
	s := sample{wall: t1.Sub(t0), cpu: cpu1 - cpu0, perClient: make([]uint64, n)}
	for i := range n {
		s.perClient[i] = c1[i] - c0[i]
	}
	if s.total() == 0 {
		return s, errors.New("no frame was delivered")
	}
	return s, nil
}

// awaitSlowClient waits until the socket buffers between the server and the slow client 0
// are full: until then (megabytes on loopback, a second or two of frames) the server's
// writes to it succeed at the camera's rate, and the interval would not show a slow client.
func (b *bench) awaitSlowClient(srv *server, n int) error {
	const window = 500 * time.Millisecond
	deadline := time.Now().Add(20 * time.Second)
	prev := mustSnapshot(srv, n)[0]
	for time.Now().Before(deadline) {
		time.Sleep(window)
		cur := mustSnapshot(srv, n)[0]
		if float64(cur-prev) <= 0.1*float64(b.fps)*window.Seconds()+1 {
			return nil
		}
		prev = cur
	}
	return errors.New("the slow client still took frames at the camera's rate after 20s")
}

func mustSnapshot(srv *server, n int) []uint64 {
	c, ok := srv.snapshot(n)
	if !ok {
		log.Fatal("a client's counter went missing")
	}
	return c
}

// cpuTime is the user and system time of this process, not of its children.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func clientID(r *http.Request) (int, error) {
	return strconv.Atoi(r.URL.Query().Get("id"))
}

// hubHandler starts the camera and serves its hub as the agent's API does
// (agent/api: Server.stream), without the token check.
func (b *bench) hubHandler(ctx context.Context, srv *server, n int) http.HandlerFunc {
	hub := stream.NewHub(n)
	go func() {
		t := time.NewTicker(time.Second / time.Duration(b.fps))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				// The frames are only ever read, so they can be published again.
				hub.Publish(b.frames[i%len(b.frames)], now)
			}
		}
	}()
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := clientID(r)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		c, err := hub.Subscribe()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer c.Close()
		srv.register(id, c.Sent)
		_ = hub.ServeMJPEG(r.Context(), w, c, 0)
	}
}

// plainHandler is the floor: it takes the connection over as ServeMJPEG does and writes the
// same bytes every 1/fps s, with nothing shared between clients but the frames.
func (b *bench) plainHandler(srv *server) http.HandlerFunc {
	boundary := strings.TrimPrefix(stream.ContentType, "multipart/x-mixed-replace; boundary=")
	delimiter := []byte("\r\n--" + boundary + "\r\n")
	headers := make([][]byte, len(b.frames))
	for i, f := range b.frames {
		headers[i] = []byte("Content-Type: image/jpeg\r\nContent-Length: " + strconv.Itoa(len(f)) + "\r\n\r\n")
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := clientID(r)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		_ = brw.Writer.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		var sent atomic.Uint64
		srv.register(id, sent.Load)
		if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: " + stream.ContentType + "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + string(delimiter[2:]))); err != nil {
			return
		}
		t := time.NewTicker(time.Second / time.Duration(b.fps))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
			// Three writes, as ServeMJPEG's: the short delimiter write pushes out the tail of
			// the image at once rather than after the receiver's delayed ACK.
			for _, piece := range [3][]byte{headers[i%len(headers)], b.frames[i%len(b.frames)], delimiter} {
				if _, err := conn.Write(piece); err != nil {
					return
				}
			}
			sent.Add(1)
		}
	}
}

// runClients is the child process: n clients reading the stream at url until the process is
// ended; with slow, client 0 reads one part a second through a small receive buffer.
func runClients(url string, n int, slow bool) error {
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- readStream(fmt.Sprintf("%s?id=%d", url, i), slow && i == 0)
		}()
	}
	err := <-errs
	return fmt.Errorf("a client ended: %w", err)
}

func readStream(url string, slow bool) error {
	dialer := &net.Dialer{}
	bufSize := 64 << 10
	if slow {
		bufSize = 4 << 10
		dialer.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, slowRcvBuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true}}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	// Only what must be parsed is: part headers, then Content-Length bytes skipped, so that
	// the clients cost little next to the server.
	br := bufio.NewReaderSize(resp.Body, bufSize)
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
			if slow {
				time.Sleep(time.Second)
			}
		}
	}
}
