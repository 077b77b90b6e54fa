// Package mjpeg splits MJPEG sources into JPEG frames: a file or pipe of concatenated JPEGs,
// and the HTTP multipart/x-mixed-replace streams that IP cameras and Debian's motion serve.
// Frames are bounded in size and read into a reused buffer, so a reader holds a fixed amount
// of memory whatever the source sends.
package mjpeg

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame bounds a frame when the caller gives no bound; it matches the motion
// engine's limit.
const DefaultMaxFrame = 8 << 20

// Errors for one bad frame. Both are returned wrapped; the frame is skipped and the next
// call to Next goes on with the following frame.
var (
	// ErrFrameTooLarge: a frame over the size bound.
	ErrFrameTooLarge = errors.New("mjpeg: frame too large")
	// ErrBadFrame: a frame whose marker structure is broken.
	ErrBadFrame = errors.New("mjpeg: malformed frame")
)

// Skippable reports whether err concerns one frame only, so that reading can go on.
func Skippable(err error) bool {
	return errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame)
}

// Reader yields the frames of an MJPEG source.
type Reader interface {
	// Next returns the next JPEG frame, valid until the following call. It returns io.EOF
	// at the clean end of the input and io.ErrUnexpectedEOF when the input ends inside a
	// frame.
	Next() ([]byte, error)
}

// JPEGStream reads concatenated JPEG frames, finding each frame's end by walking its marker
// segments rather than by looking for the EOI bytes, which may also occur inside an
// embedded thumbnail. Bytes between frames are skipped.
type JPEGStream struct {
	br  *bufio.Reader
	buf []byte
	max int
	// soi reports that the SOI of the next frame has already been read: a frame cut short
	// by the next one's start.
	soi bool
}

// NewJPEGStream reads frames of at most maxFrame bytes (DefaultMaxFrame if maxFrame <= 0)
// from r.
func NewJPEGStream(r io.Reader, maxFrame int) *JPEGStream {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &JPEGStream{br: bufio.NewReaderSize(r, 64<<10), max: maxFrame}
}

// Next implements Reader.
func (s *JPEGStream) Next() ([]byte, error) {
	if !s.soi {
		if err := s.findSOI(); err != nil {
			return nil, err
		}
	}
	s.soi = false
	return s.readFrame()
}

// findSOI discards bytes up to and including the next FF D8.
func (s *JPEGStream) findSOI() error {
	for {
		if _, err := s.br.ReadSlice(0xFF); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return err // io.EOF: no further frame
		}
		b, err := s.br.ReadByte()
		if err != nil {
			return err
		}
		switch b {
		case 0xD8:
			return nil
		case 0xFF:
			if err := s.br.UnreadByte(); err != nil {
				return err
			}
		}
	}
}

// readFrame reads the rest of a frame whose SOI was just consumed.
func (s *JPEGStream) readFrame() ([]byte, error) {
	s.buf = append(s.buf[:0], 0xFF, 0xD8)
	var m byte
	pending := false // m is the marker that ended a scan, already read
	for {
		if !pending {
			var err error
			if m, err = s.readMarker(); err != nil {
				return nil, err
			}
		}
		pending = false
		switch {
		case m == 0xD9:
			return s.buf, nil
		case m == 0xD8:
			s.soi = true
			return nil, fmt.Errorf("%w: cut short by the next frame", ErrBadFrame)
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7):
			continue
		}
		var lenBytes [2]byte
		if _, err := io.ReadFull(s.br, lenBytes[:]); err != nil {
			return nil, unexpected(err)
		}
		n := int(lenBytes[0])<<8 | int(lenBytes[1])
		if n < 2 {
			return nil, fmt.Errorf("%w: marker 0x%02X has length %d", ErrBadFrame, m, n)
		}
		if len(s.buf)+n > s.max {
			return nil, s.tooLarge()
		}
		s.buf = append(s.buf, lenBytes[0], lenBytes[1])
		start := len(s.buf)
		s.buf = append(s.buf, make([]byte, n-2)...)
		if _, err := io.ReadFull(s.br, s.buf[start:]); err != nil {
			return nil, unexpected(err)
		}
		if m == 0xDA {
			var err error
			if m, err = s.readEntropy(); err != nil {
				return nil, err
			}
			pending = true
		}
	}
}

// readMarker reads FF (and fill bytes) and the marker code, appending both. Stray bytes
// where a marker should be are dropped, as decoders do.
func (s *JPEGStream) readMarker() (byte, error) {
	for {
		b, err := s.br.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		if b != 0xFF {
			continue
		}
		for b == 0xFF {
			if b, err = s.br.ReadByte(); err != nil {
				return 0, unexpected(err)
			}
		}
		if b == 0x00 {
			continue
		}
		s.buf = append(s.buf, 0xFF, b)
		return b, nil
	}
}

// readEntropy appends entropy-coded data and the marker that ends it, and returns that
// marker's code.
func (s *JPEGStream) readEntropy() (byte, error) {
	for {
		chunk, err := s.br.ReadSlice(0xFF)
		if len(s.buf)+len(chunk)+1 > s.max {
			return 0, s.tooLarge()
		}
		s.buf = append(s.buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return 0, unexpected(err)
		}
		b, err := s.br.ReadByte()
		for err == nil && b == 0xFF { // fill bytes before a marker
			b, err = s.br.ReadByte()
		}
		if err != nil {
			return 0, unexpected(err)
		}
		s.buf = append(s.buf, b)
		if b != 0x00 && (b < 0xD0 || b > 0xD7) {
			return b, nil
		}
	}
}

// tooLarge reports an oversized frame; the next Next skips its remainder while looking for
// the following SOI.
func (s *JPEGStream) tooLarge() error {
	s.buf = s.buf[:0]
	return fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, s.max)
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
