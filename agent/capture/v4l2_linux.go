//go:build linux && cgo

package capture

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/vladimirvivien/go4vl/v4l2"
	"golang.org/x/sys/unix"
)

// v4l2Buffers is how many buffers the driver fills in turn: enough that one being delivered
// does not make the camera drop the next.
const v4l2Buffers = 4

// v4l2StallTimeout ends a run whose device delivers nothing for this long: a camera that
// hangs without going away, as some USB cameras do on a starved bus.
const v4l2StallTimeout = 10 * time.Second

// V4L2 captures from a Video4Linux2 device, such as a USB webcam on a Raspberry Pi, in
// MJPEG (the default) or YUYV. It uses go4vl's ioctl wrappers but not its device stream
// loop, which panics when a camera is unplugged; its own loop returns Disconnected instead.
type V4L2 struct {
	Config Config
}

// Run opens the device, negotiates the format, size and rate, and delivers frames straight
// from the driver's buffers until ctx ends or the device fails.
func (s V4L2) Run(ctx context.Context, deliver Deliver) error {
	if ctx.Err() != nil {
		return nil
	}
	dev, tmpl, err := openV4L2(ctx, s.Config)
	if err != nil {
		return err
	}
	return runDevice(ctx, s.Config.Device, dev, tmpl, deliver)
}

// frameDevice is a capture device whose buffers are filled by a driver: the loop in
// runDevice over it is what a test drives with a fake.
type frameDevice interface {
	// wait blocks until a buffer can be dequeued; it returns ctx's error when ctx ends and
	// an *Error when the device fails or stalls.
	wait(ctx context.Context) error
	// dequeue takes a filled buffer; buf is nil for a buffer the driver marked bad. It
	// returns an error wrapping EAGAIN if no buffer was ready after all.
	dequeue() (buf []byte, index uint32, err error)
	// requeue gives a buffer back to the driver to fill.
	requeue(index uint32) error
	close() error
}

// runDevice delivers the device's frames, each described by tmpl, until ctx ends (it returns
// nil) or the device fails (an *Error, Disconnected unless the device said otherwise). It
// closes the device.
func runDevice(ctx context.Context, name string, dev frameDevice, tmpl Frame, deliver Deliver) error {
	defer func() { _ = dev.close() }()
	for {
		if err := dev.wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return failWith(ReasonDisconnected, err, "%s", name)
		}
		buf, index, err := dev.dequeue()
		if errors.Is(err, syscall.EAGAIN) {
			continue
		}
		if err != nil {
			return failWith(ReasonDisconnected, err, "%s: take a frame", name)
		}
		if len(buf) > 0 {
			f := tmpl
			f.Data, f.Captured = buf, time.Now()
			deliver(f)
		}
		if err := dev.requeue(index); err != nil {
			return failWith(ReasonDisconnected, err, "%s: give a buffer back", name)
		}
	}
}

// failWith returns err if it is an *Error already (the device said why it failed), and
// otherwise wraps it with reason and a message.
func failWith(reason Reason, err error, format string, args ...any) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Fail(reason, "%s: %w", fmt.Sprintf(format, args...), err)
}

// v4l2Device is an open, streaming device with its buffers mapped.
type v4l2Device struct {
	path string
	fd   uintptr
	open bool
	bufs [][]byte
	// reqBufs reports that buffers were requested and must be released; streaming that
	// the stream was turned on.
	reqBufs, streaming bool
	// wakeR becomes readable (at EOF) when wakeW is closed, which stopWake arranges for when
	// the run's context ends, so that poll returns at once.
	wakeR, wakeW *os.File
	wakeFd       int32
	stopWake     func() bool
}

// openV4L2 opens cfg.Device for streaming and returns it with the frame template its
// negotiated format gives.
func openV4L2(ctx context.Context, cfg Config) (*v4l2Device, Frame, error) {
	format := cfg.Format
	if format == "" {
		format = FormatMJPEG
	}
	var fourcc v4l2.FourCCType
	switch format {
	case FormatMJPEG:
		fourcc = v4l2.PixelFmtMJPEG
	case FormatYUYV:
		fourcc = v4l2.PixelFmtYUYV
	default:
		return nil, Frame{}, Fail(ReasonFormatUnsupported, "format %q: V4L2 capture supports %s and %s", format, FormatMJPEG, FormatYUYV)
	}
	path := cfg.Device
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, Frame{}, Fail(ReasonDeviceNotFound, "%s does not exist", path)
	case err != nil:
		return nil, Frame{}, Fail(ReasonConnectFailed, "%w", err)
	case fi.Mode()&fs.ModeCharDevice == 0:
		return nil, Frame{}, Fail(ReasonNotACamera, "%s is not a device", path)
	}

	d := &v4l2Device{path: path}
	tmpl, err := d.setUp(ctx, fourcc, format, cfg)
	if err != nil {
		_ = d.close()
		return nil, Frame{}, err
	}
	return d, tmpl, nil
}

// setUp takes the device from closed to streaming; on error the caller closes it.
func (d *v4l2Device) setUp(ctx context.Context, fourcc v4l2.FourCCType, format Format, cfg Config) (Frame, error) {
	var err error
	if d.wakeR, d.wakeW, err = os.Pipe(); err != nil {
		return Frame{}, Fail(ReasonConnectFailed, "wake-up pipe: %w", err)
	}
	d.wakeFd = int32(d.wakeR.Fd())
	d.stopWake = context.AfterFunc(ctx, func() { _ = d.wakeW.Close() })

	fd, err := v4l2.OpenDevice(d.path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // it repeats the path
		}
		return Frame{}, d.fail(ReasonConnectFailed, err, "open")
	}
	d.fd, d.open = fd, true

	caps, err := v4l2.GetCapability(fd)
	if err != nil {
		if errors.Is(err, v4l2.ErrorUnsupported) || errors.Is(err, v4l2.ErrorBadArgument) {
			return Frame{}, Fail(ReasonNotACamera, "%s is not a V4L2 device: %w", d.path, err)
		}
		return Frame{}, d.fail(ReasonDisconnected, err, "query capabilities")
	}
	c := caps.GetCapabilities()
	if c&v4l2.CapVideoCapture == 0 {
		return Frame{}, Fail(ReasonNotACamera, "%s (%s, driver %s) does not capture video", d.path, caps.Card, caps.Driver)
	}
	if c&v4l2.CapStreaming == 0 {
		return Frame{}, Fail(ReasonUnsupported, "%s (%s, driver %s) does not support streaming I/O", d.path, caps.Card, caps.Driver)
	}

	pix, err := v4l2.GetPixFormat(fd)
	if err != nil {
		return Frame{}, d.fail(ReasonDisconnected, err, "read format")
	}
	pix.PixelFormat, pix.Field, pix.BytesPerLine, pix.SizeImage = fourcc, v4l2.FieldNone, 0, 0
	if cfg.Width > 0 && cfg.Height > 0 {
		pix.Width, pix.Height = uint32(cfg.Width), uint32(cfg.Height)
	}
	if err := v4l2.SetPixFormat(fd, pix); err != nil {
		if errors.Is(err, v4l2.ErrorBadArgument) {
			return Frame{}, Fail(ReasonFormatUnsupported, "%s refuses %s %dx%d: %w", d.path, format, pix.Width, pix.Height, err)
		}
		return Frame{}, d.fail(ReasonDisconnected, err, "set format")
	}
	// The driver adjusts what it cannot do; read back what it chose.
	if pix, err = v4l2.GetPixFormat(fd); err != nil {
		return Frame{}, d.fail(ReasonDisconnected, err, "read format")
	}
	if pix.PixelFormat != fourcc {
		return Frame{}, Fail(ReasonFormatUnsupported, "%s offers %s, not %s", d.path, fourccString(pix.PixelFormat), format)
	}
	if cfg.FPS > 0 {
		// Many drivers have a fixed rate and refuse this; the camera then runs at its own.
		param := v4l2.StreamParam{Capture: v4l2.CaptureParam{TimePerFrame: v4l2.Fract{Numerator: 1, Denominator: uint32(cfg.FPS)}}}
		_ = v4l2.SetStreamParam(fd, v4l2.BufTypeVideoCapture, param)
	}

	h := streamHandle{fd: fd, count: v4l2Buffers}
	req, err := v4l2.InitBuffers(h)
	if err != nil {
		return Frame{}, d.fail(ReasonUnsupported, err, "request buffers")
	}
	d.reqBufs = true
	if req.Count == 0 {
		return Frame{}, Fail(ReasonUnsupported, "%s gave no capture buffers", d.path)
	}
	h.count = req.Count
	for i := range req.Count {
		b, err := v4l2.GetBuffer(h, i)
		if err != nil {
			return Frame{}, d.fail(ReasonDisconnected, err, "query buffer")
		}
		m, err := unix.Mmap(int(fd), int64(b.Info.Offset), int(b.Length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return Frame{}, d.fail(ReasonDisconnected, err, "map buffer")
		}
		d.bufs = append(d.bufs, m)
	}
	for i := range req.Count {
		if err := d.requeue(i); err != nil {
			return Frame{}, d.fail(ReasonDisconnected, err, "queue buffer")
		}
	}
	if err := v4l2.StreamOn(h); err != nil {
		return Frame{}, d.fail(ReasonDisconnected, err, "start streaming")
	}
	d.streaming = true

	tmpl := Frame{Format: format, Width: int(pix.Width), Height: int(pix.Height)}
	if format == FormatYUYV {
		tmpl.Stride = int(pix.BytesPerLine)
		if tmpl.Stride == 0 {
			tmpl.Stride = 2 * tmpl.Width
		}
	}
	return tmpl, nil
}

// fail classifies an error of step on the device: the errno says more than the step does.
func (d *v4l2Device) fail(reason Reason, err error, step string) *Error {
	switch {
	case errors.Is(err, syscall.EBUSY):
		reason = ReasonDeviceBusy
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		reason = ReasonDeviceNotFound
	}
	return Fail(reason, "%s: %s: %w", d.path, step, err)
}

func (d *v4l2Device) wait(ctx context.Context) error {
	deadline := time.Now().Add(v4l2StallTimeout)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return Fail(ReasonStalled, "%s delivered no frame in %s", d.path, v4l2StallTimeout)
		}
		fds := []unix.PollFd{
			{Fd: int32(d.fd), Events: unix.POLLIN},
			{Fd: d.wakeFd, Events: unix.POLLIN},
		}
		_, err := unix.Poll(fds, int(left.Milliseconds())+1)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return Fail(ReasonDisconnected, "%s: poll: %w", d.path, err)
		case fds[1].Revents != 0:
			continue // ctx ended: the check above returns
		case fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0:
			// The driver reports an error on a streaming queue when the device is gone.
			return Fail(ReasonDisconnected, "%s reports an error (poll events 0x%x)", d.path, fds[0].Revents)
		case fds[0].Revents&unix.POLLIN != 0:
			return nil
		}
	}
}

func (d *v4l2Device) dequeue() ([]byte, uint32, error) {
	b, err := v4l2.DequeueBuffer(d.fd, v4l2.IOTypeMMAP, v4l2.BufTypeVideoCapture)
	if err != nil {
		return nil, 0, err
	}
	if int(b.Index) >= len(d.bufs) {
		return nil, 0, Fail(ReasonBadStream, "%s returned buffer %d of %d", d.path, b.Index, len(d.bufs))
	}
	if b.Flags&v4l2.BufFlagError != 0 || b.BytesUsed == 0 {
		return nil, b.Index, nil
	}
	buf := d.bufs[b.Index]
	return buf[:min(int(b.BytesUsed), len(buf))], b.Index, nil
}

func (d *v4l2Device) requeue(index uint32) error {
	_, err := v4l2.QueueBuffer(d.fd, v4l2.IOTypeMMAP, v4l2.BufTypeVideoCapture, index)
	return err
}

// close undoes what setUp did, in reverse; it goes on past errors, which are expected from
// a device that is gone.
func (d *v4l2Device) close() error {
	var errs []error
	h := streamHandle{fd: d.fd}
	if d.streaming {
		errs = append(errs, v4l2.StreamOff(h))
		d.streaming = false
	}
	for _, b := range d.bufs {
		errs = append(errs, unix.Munmap(b))
	}
	d.bufs = nil
	if d.reqBufs {
		_, err := v4l2.ResetBuffers(h)
		errs = append(errs, err)
		d.reqBufs = false
	}
	if d.open {
		errs = append(errs, v4l2.CloseDevice(d.fd))
		d.open = false
	}
	if d.stopWake != nil {
		d.stopWake()
		_ = d.wakeW.Close() // already closed if ctx ended
		errs = append(errs, d.wakeR.Close())
		d.stopWake = nil
	}
	return errors.Join(errs...)
}

// fourccString spells a pixel format's four characters, such as "YUYV".
func fourccString(f v4l2.FourCCType) string {
	return string([]byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)})
}

// streamHandle is the least of a v4l2.StreamingDevice, which go4vl's buffer helpers
// (InitBuffers, GetBuffer, StreamOn, StreamOff, ResetBuffers) take but use only for the fd,
// buffer type, memory type and buffer count.
type streamHandle struct {
	fd    uintptr
	count uint32
}

var _ v4l2.StreamingDevice = streamHandle{}

var errNotUsed = errors.New("not used by capture")

func (h streamHandle) Name() string                { return "" }
func (h streamHandle) Fd() uintptr                 { return h.fd }
func (h streamHandle) Capability() v4l2.Capability { return v4l2.Capability{} }
func (h streamHandle) MemIOType() v4l2.IOType      { return v4l2.IOTypeMMAP }
func (h streamHandle) GetOutput() <-chan []byte    { return nil }
func (h streamHandle) SetInput(<-chan []byte)      {}
func (h streamHandle) Close() error                { return errNotUsed }
func (h streamHandle) Buffers() [][]byte           { return nil }
func (h streamHandle) BufferType() v4l2.BufType    { return v4l2.BufTypeVideoCapture }
func (h streamHandle) BufferCount() uint32         { return h.count }
func (h streamHandle) Start(context.Context) error { return errNotUsed }
func (h streamHandle) Stop() error                 { return errNotUsed }
