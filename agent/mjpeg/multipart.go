package mjpeg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
)

// maxJunk bounds what may come between two parts (blank lines, a preamble, stray bytes)
// before the stream is declared broken.
const maxJunk = 64 << 10

// Multipart reads a multipart/x-mixed-replace stream of JPEG parts. It is lenient where
// cameras differ: a boundary given with or without its leading "--", missing or extra blank
// lines, and parts with or without Content-Length (without it, the JPEG's own markers say
// where it ends).
type Multipart struct {
	br       *bufio.Reader
	boundary []byte // without leading dashes
	jpeg     *JPEGStream
	max      int
}

// NewMultipart reads JPEG parts of at most maxFrame bytes (DefaultMaxFrame if <= 0) from r,
// a body whose parts are separated by boundary.
func NewMultipart(r io.Reader, boundary string, maxFrame int) *Multipart {
	js := NewJPEGStream(r, maxFrame)
	return &Multipart{
		br:       js.br,
		boundary: []byte(strings.TrimLeft(boundary, "-")),
		jpeg:     js,
		max:      js.max,
	}
}

// Boundary returns the boundary of a multipart Content-Type such as IP cameras send
// ("multipart/x-mixed-replace; boundary=frame").
func Boundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("parse content type %q: %w", contentType, err)
	}
	b := strings.TrimLeft(params["boundary"], "-")
	if !strings.HasPrefix(mt, "multipart/") || b == "" {
		return "", fmt.Errorf("content type %q is not multipart with a boundary", contentType)
	}
	return b, nil
}

// Next implements Reader.
func (m *Multipart) Next() ([]byte, error) {
	if err := m.findBoundary(); err != nil {
		return nil, err
	}
	length, err := m.readHeaders()
	if err != nil {
		return nil, err
	}
	if length < 0 {
		// No usable Content-Length: the JPEG's structure delimits the part.
		return m.jpeg.Next()
	}
	if length > m.max {
		if _, err := m.br.Discard(length); err != nil {
			return nil, unexpected(err)
		}
		return nil, fmt.Errorf("%w: part of %d bytes, the limit is %d", ErrFrameTooLarge, length, m.max)
	}
	buf := m.jpeg.buf[:0]
	if cap(buf) < length {
		buf = make([]byte, 0, length)
	}
	buf = buf[:length]
	m.jpeg.buf = buf
	if _, err := io.ReadFull(m.br, buf); err != nil {
		return nil, unexpected(err)
	}
	return buf, nil
}

// findBoundary skips to the line after the next boundary line.
func (m *Multipart) findBoundary() error {
	junk := 0
	for {
		line, err := m.br.ReadSlice('\n')
		junk += len(line)
		if junk > maxJunk {
			return fmt.Errorf("mjpeg: no multipart boundary in %d bytes", junk)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("--")) {
			rest := bytes.TrimLeft(line, "-")
			if bytes.HasPrefix(rest, m.boundary) {
				if bytes.HasSuffix(rest, []byte("--")) && len(rest) == len(m.boundary)+2 {
					return io.EOF // the closing boundary
				}
				return nil
			}
		}
	}
}

// readHeaders reads a part's header lines and returns its Content-Length, or -1 if absent.
func (m *Multipart) readHeaders() (int, error) {
	length := -1
	for n := 0; ; n++ {
		line, err := m.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, fmt.Errorf("%w: part header line too long", ErrBadFrame)
		}
		if err != nil {
			return 0, unexpected(err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return length, nil
		}
		if n > 64 {
			return 0, fmt.Errorf("%w: part has more than 64 header lines", ErrBadFrame)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Length") {
			v, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err == nil && v >= 0 {
				length = v
			}
		}
	}
}
