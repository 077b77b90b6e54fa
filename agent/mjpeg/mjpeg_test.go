package mjpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func testFrame(t *testing.T, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = shade + uint8(i%7)
	}
	img.SetGray(1, 1, color.Gray{Y: 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withThumbnail inserts an APP1 segment holding a whole tiny JPEG, SOI to EOI, as EXIF
// thumbnails do: a splitter that looks for FF D9 would cut the frame there.
func withThumbnail(t *testing.T, frame []byte) []byte {
	t.Helper()
	thumb := testFrame(t, 8, 8, 10)
	seg := []byte{0xFF, 0xE1, byte((len(thumb) + 2) >> 8), byte(len(thumb) + 2)}
	out := append([]byte{}, frame[:2]...)
	out = append(out, seg...)
	out = append(out, thumb...)
	return append(out, frame[2:]...)
}

func readAll(t *testing.T, r Reader) ([][]byte, error) {
	t.Helper()
	var frames [][]byte
	for {
		f, err := r.Next()
		if err != nil {
			return frames, err
		}
		frames = append(frames, bytes.Clone(f))
	}
}

func TestJPEGStream(t *testing.T) {
	f1 := testFrame(t, 64, 48, 20)
	f2 := withThumbnail(t, testFrame(t, 32, 32, 90))
	f3 := testFrame(t, 40, 24, 150)
	// Fill bytes before EOI are legal; the splitter keeps one FF.
	f3fill := append(bytes.Clone(f3[:len(f3)-2]), 0xFF, 0xFF, 0xFF, 0xD9)

	cases := []struct {
		name    string
		stream  [][]byte
		max     int
		want    [][]byte
		wantErr error
		skipped int
	}{
		{"frames with junk between", [][]byte{[]byte("junk\r\n"), f1, []byte("\r\n"), f2, f3fill}, 0, [][]byte{f1, f2, f3}, io.EOF, 0},
		{"truncated last frame", [][]byte{f1, f2[:len(f2)/2]}, 0, [][]byte{f1}, io.ErrUnexpectedEOF, 0},
		{"frame cut by the next", [][]byte{f1[:len(f1)-10], f3}, 0, [][]byte{f3}, io.EOF, 1},
		{"oversized frame skipped", [][]byte{f1, f2, f3}, len(f2) - 1, [][]byte{f1, f3}, io.EOF, 1},
		{"empty", nil, 0, nil, io.EOF, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewJPEGStream(bytes.NewReader(bytes.Join(c.stream, nil)), c.max)
			var got [][]byte
			skipped := 0
			var err error
			for {
				var f []byte
				f, err = s.Next()
				if Skippable(err) {
					skipped++
					continue
				}
				if err != nil {
					break
				}
				got = append(got, bytes.Clone(f))
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("ended with %v, want %v", err, c.wantErr)
			}
			if skipped != c.skipped {
				t.Fatalf("%d frames skipped, want %d", skipped, c.skipped)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d frames, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], c.want[i]) {
					t.Fatalf("frame %d differs: %d bytes, want %d", i, len(got[i]), len(c.want[i]))
				}
			}
		})
	}
}

// multipartBody writes frames as a camera does, with or without Content-Length.
func multipartBody(frames [][]byte, boundary string, withLength bool, closing bool) []byte {
	var b bytes.Buffer
	for _, f := range frames {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: image/jpeg\r\n", boundary)
		if withLength {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(f))
		}
		b.WriteString("\r\n")
		b.Write(f)
		b.WriteString("\r\n")
	}
	if closing {
		fmt.Fprintf(&b, "--%s--\r\n", boundary)
	}
	return b.Bytes()
}

func TestMultipart(t *testing.T) {
	frames := [][]byte{testFrame(t, 64, 48, 20), withThumbnail(t, testFrame(t, 32, 32, 90)), testFrame(t, 40, 24, 150)}
	cases := []struct {
		name        string
		contentType string
		body        []byte
		max         int
		want        int
		wantErr     error
	}{
		{"content length", "multipart/x-mixed-replace; boundary=frame", multipartBody(frames, "frame", true, true), 0, 3, io.EOF},
		{"no content length", "multipart/x-mixed-replace;boundary=BoundaryString", multipartBody(frames, "BoundaryString", false, false), 0, 3, io.EOF},
		{"boundary given with dashes", `multipart/x-mixed-replace; boundary="--myboundary"`, multipartBody(frames, "myboundary", true, false), 0, 3, io.EOF},
		{"cut inside a part", "multipart/x-mixed-replace; boundary=frame", multipartBody(frames, "frame", true, false)[:300], 0, 0, io.ErrUnexpectedEOF},
		{"oversized part skipped", "multipart/x-mixed-replace; boundary=frame", multipartBody(frames, "frame", true, true), len(frames[1]) - 1, 2, io.EOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			boundary, err := Boundary(c.contentType)
			if err != nil {
				t.Fatal(err)
			}
			m := NewMultipart(bytes.NewReader(c.body), boundary, c.max)
			n := 0
			for {
				f, err := m.Next()
				if Skippable(err) {
					continue
				}
				if err != nil {
					if !errors.Is(err, c.wantErr) {
						t.Fatalf("ended with %v, want %v", err, c.wantErr)
					}
					break
				}
				if f[0] != 0xFF || f[1] != 0xD8 || f[len(f)-2] != 0xFF || f[len(f)-1] != 0xD9 {
					t.Fatalf("frame %d is not a whole JPEG", n)
				}
				n++
			}
			if n != c.want {
				t.Fatalf("%d frames, want %d", n, c.want)
			}
		})
	}
}

func TestBoundaryRejectsNonMultipart(t *testing.T) {
	for _, ct := range []string{"image/jpeg", "multipart/x-mixed-replace", "text/html; boundary=x", ""} {
		if _, err := Boundary(ct); err == nil {
			t.Errorf("Boundary(%q) accepted", ct)
		}
	}
}

func TestOpen(t *testing.T) {
	frames := [][]byte{testFrame(t, 64, 48, 20), testFrame(t, 32, 32, 90)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
			_, _ = w.Write(multipartBody(frames, "frame", true, false))
		case "/jpeg":
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(frames[0])
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "clip.mjpeg")
	if err := os.WriteFile(path, bytes.Join(frames, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		source  string
		want    int
		openErr bool
	}{
		{srv.URL + "/stream", 2, false},
		{srv.URL + "/jpeg", 1, false},
		{srv.URL + "/missing", 0, true},
		{path, 2, false},
		{filepath.Join(t.TempDir(), "absent.mjpeg"), 0, true},
	}
	for _, c := range cases {
		t.Run(c.source, func(t *testing.T) {
			r, closer, err := Open(context.Background(), c.source, srv.Client(), 0)
			if (err != nil) != c.openErr {
				t.Fatalf("Open: %v", err)
			}
			if err != nil {
				return
			}
			defer closer.Close()
			got, err := readAll(t, r)
			if !errors.Is(err, io.EOF) || len(got) != c.want {
				t.Fatalf("%d frames ending with %v, want %d and EOF", len(got), err, c.want)
			}
		})
	}
}
