package motion

import "errors"

// Errors a frame can be rejected with. Each rejected frame returns one of them wrapped with
// the detail (errors.Is works); the detector counts it and the next frame is handled as if
// the bad one had not come, so a stream never stops on a bad frame.
var (
	// ErrNotJPEG: the frame does not start with a JPEG SOI marker.
	ErrNotJPEG = errors.New("not a JPEG frame")
	// ErrTruncated: the frame ends before its image data does.
	ErrTruncated = errors.New("truncated JPEG frame")
	// ErrCorrupt: the frame's structure or entropy-coded data is malformed.
	ErrCorrupt = errors.New("corrupt JPEG frame")
	// ErrProgressive: progressive JPEG, which cameras do not send and which has no cheap
	// DC-only path.
	ErrProgressive = errors.New("progressive JPEG is not supported")
	// ErrArithmetic: arithmetic-coded JPEG.
	ErrArithmetic = errors.New("arithmetic-coded JPEG is not supported")
	// ErrPrecision: a sample precision other than 8 bits (12-bit JPEG).
	ErrPrecision = errors.New("only 8-bit JPEG is supported")
	// ErrColorSpace: a colour space whose first component is not luma (CMYK, YCCK, RGB).
	ErrColorSpace = errors.New("JPEG colour space has no luma component")
	// ErrUnsupported: other JPEG features cameras do not use (lossless, hierarchical, DNL,
	// luma stored at a lower resolution than chroma).
	ErrUnsupported = errors.New("unsupported JPEG feature")
	// ErrTooLarge: the frame exceeds MaxFrameBytes or MaxDimension.
	ErrTooLarge = errors.New("frame too large")
	// ErrFrameSize: raw frame dimensions that do not match its buffer.
	ErrFrameSize = errors.New("bad raw frame size")
)
