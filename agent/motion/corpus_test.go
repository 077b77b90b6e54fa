package motion

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// sceneImage draws a deterministic test picture: gradients, discs, stripes and noise, so
// that blocks have real AC content and DC values span the whole range.
func sceneImage(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type disc struct {
		x, y, r float64
		c       color.RGBA
	}
	discs := make([]disc, 6)
	for i := range discs {
		discs[i] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h), 4 + rng.Float64()*float64(min(w, h))/4,
			color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r := uint8(x * 255 / max(w-1, 1))
			g := uint8(y * 255 / max(h-1, 1))
			b := uint8(128 + 100*((x/7+y/5)%2))
			for _, d := range discs {
				dx, dy := float64(x)-d.x, float64(y)-d.y
				if dx*dx+dy*dy < d.r*d.r {
					r, g, b = d.c.R, d.c.G, d.c.B
				}
			}
			n := rng.IntN(21) - 10
			img.SetRGBA(x, y, color.RGBA{clamp8(int(r) + n), clamp8(int(g) + n), clamp8(int(b) + n), 255})
		}
	}
	return img
}

func clamp8(v int) uint8 { return uint8(min(max(v, 0), 255)) }

func grayOf(img *image.RGBA) *image.Gray {
	g := image.NewGray(img.Bounds())
	for i := 0; i < len(g.Pix); i++ {
		p := img.Pix[4*i:]
		g.Pix[i] = uint8((19595*int(p[0]) + 38470*int(p[1]) + 7471*int(p[2]) + 1<<15) >> 16)
	}
	return g
}

func encodeGo(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatalf("image/jpeg encode: %v", err)
	}
	return buf.Bytes()
}

// writePNM writes img as binary PPM, or PGM when gray, for cjpeg.
func writePNM(t testing.TB, path string, img *image.RGBA, gray bool) {
	t.Helper()
	b := img.Bounds()
	var buf bytes.Buffer
	if gray {
		fmt.Fprintf(&buf, "P5\n%d %d\n255\n", b.Dx(), b.Dy())
		buf.Write(grayOf(img).Pix)
	} else {
		fmt.Fprintf(&buf, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
		for i := 0; i < len(img.Pix); i += 4 {
			buf.Write(img.Pix[i : i+3])
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stripDHT removes every DHT segment before the first scan, leaving a frame that only
// decodes with the standard tables, as UVC cameras send them.
func stripDHT(t testing.TB, data []byte) []byte {
	t.Helper()
	out := append([]byte(nil), data[:2]...)
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			t.Fatalf("stripDHT: no marker at %d", i)
		}
		m := data[i+1]
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if m == 0xDA {
			return append(out, data[i:]...)
		}
		if m != 0xC4 {
			out = append(out, data[i:i+2+n]...)
		}
		i += 2 + n
	}
	t.Fatal("stripDHT: no scan")
	return nil
}

func hasDHT(data []byte) bool {
	for i := 2; i+4 <= len(data) && data[i] == 0xFF; i += 2 + int(binary.BigEndian.Uint16(data[i+2:])) {
		switch data[i+1] {
		case 0xC4:
			return true
		case 0xDA:
			return false
		}
	}
	return false
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run hack/apt.sh", name)
	}
	return p
}

// corpusFrame is one JPEG of the reference corpus.
type corpusFrame struct {
	name string
	data []byte
}

// goCorpus encodes frames with image/jpeg, which needs no external tool: colour (4:2:0)
// and gray, several sizes and qualities, with and without DHT.
func goCorpus(t testing.TB) []corpusFrame {
	return goCorpusSized(t, [][2]int{{640, 480}, {333, 217}, {97, 61}, {17, 9}})
}

// goCorpusSized is goCorpus over the given sizes; the fuzzer uses small ones, since it
// mutates and minimizes faster on small inputs.
func goCorpusSized(t testing.TB, sizes [][2]int) []corpusFrame {
	t.Helper()
	var out []corpusFrame
	for i, q := range []int{25, 60, 90} {
		sz := sizes[i%len(sizes)]
		img := sceneImage(sz[0], sz[1], uint64(i+1))
		c := encodeGo(t, img, q)
		g := encodeGo(t, grayOf(img), q)
		out = append(out,
			corpusFrame{fmt.Sprintf("go-420-q%d-%dx%d", q, sz[0], sz[1]), c},
			corpusFrame{fmt.Sprintf("go-gray-q%d-%dx%d", q, sz[0], sz[1]), g},
			corpusFrame{fmt.Sprintf("go-420-q%d-%dx%d-nodht", q, sz[0], sz[1]), stripDHT(t, c)},
		)
	}
	img := sceneImage(17, 9, 9)
	out = append(out, corpusFrame{"go-420-q75-17x9", encodeGo(t, img, 75)})
	return out
}

// cjpegCorpus encodes frames with libjpeg-turbo's cjpeg in dir: every sampling, several
// qualities and sizes, restart intervals in rows and in blocks, and DHT-stripped copies.
func cjpegCorpus(t testing.TB, dir string) []corpusFrame {
	t.Helper()
	cjpeg := needTool(t, "cjpeg")
	samplings := []struct {
		name string
		args []string
	}{
		{"420", []string{"-sample", "2x2"}},
		{"422", []string{"-sample", "2x1"}},
		{"444", []string{"-sample", "1x1"}},
		{"gray", []string{"-grayscale"}},
	}
	sizes := [][2]int{{640, 480}, {333, 217}, {100, 75}, {31, 23}}
	restarts := []struct {
		name string
		args []string
	}{
		{"", nil},
		{"-rst1row", []string{"-restart", "1"}},
		{"-rst5blk", []string{"-restart", "5B"}},
	}
	var out []corpusFrame
	n := 0
	for si, s := range samplings {
		for qi, q := range []int{50, 75, 95} {
			sz := sizes[(si+qi)%len(sizes)]
			rst := restarts[(si+qi)%len(restarts)]
			src := filepath.Join(dir, fmt.Sprintf("src%d.pnm", n))
			writePNM(t, src, sceneImage(sz[0], sz[1], uint64(100+n)), s.name == "gray")
			n++
			args := append([]string{"-quality", strconv.Itoa(q)}, s.args...)
			args = append(args, rst.args...)
			cmd := exec.Command(cjpeg, append(args, src)...)
			data, err := cmd.Output()
			if err != nil {
				t.Fatalf("cjpeg %v: %v", args, err)
			}
			name := fmt.Sprintf("cjpeg-%s-q%d-%dx%d%s", s.name, q, sz[0], sz[1], rst.name)
			out = append(out, corpusFrame{name, data})
			if qi != 1 {
				out = append(out, corpusFrame{name + "-nodht", stripDHT(t, data)})
			}
		}
	}
	// Baseline with one scan per component, luma in the second: the reader must skip a
	// chroma scan and decode a non-interleaved one, whose MCU is a single block.
	scans := filepath.Join(dir, "scans.txt")
	if err := os.WriteFile(scans, []byte("1;\n0;\n2;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, rst := range [][]string{nil, {"-restart", "3B"}} {
		src := filepath.Join(dir, fmt.Sprintf("ms%d.ppm", i))
		writePNM(t, src, sceneImage(201, 150, uint64(200+i)), false)
		args := append([]string{"-quality", "80", "-sample", "2x2", "-scans", scans}, rst...)
		data, err := exec.Command(cjpeg, append(args, src)...).Output()
		if err != nil {
			t.Fatalf("cjpeg %v: %v", args, err)
		}
		out = append(out, corpusFrame{fmt.Sprintf("cjpeg-420-multiscan%d-201x150", i), data})
	}
	return out
}

// djpegGrid runs `djpeg -scale 1/8 -grayscale -pnm` on data and returns its PGM as a grid.
func djpegGrid(t testing.TB, djpeg, dir, name string, data []byte) Grid {
	t.Helper()
	path := filepath.Join(dir, name+".jpg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(djpeg, "-scale", "1/8", "-grayscale", "-pnm", path).Output()
	if err != nil {
		t.Fatalf("djpeg %s: %v", name, err)
	}
	br := bufio.NewReader(bytes.NewReader(out))
	var w, h, maxv int
	var magic string
	if _, err := fmt.Fscan(br, &magic, &w, &h, &maxv); err != nil || magic != "P5" || maxv != 255 {
		t.Fatalf("djpeg %s: unexpected output header %q %d %d %d (%v)", name, magic, w, h, maxv, err)
	}
	if _, err := br.ReadByte(); err != nil { // the single whitespace after maxval
		t.Fatal(err)
	}
	pix := make([]byte, w*h)
	if _, err := io.ReadFull(br, pix); err != nil {
		t.Fatal(err)
	}
	return Grid{W: w, H: h, Pix: pix}
}
