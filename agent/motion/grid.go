package motion

import (
	"encoding/binary"
	"fmt"
)

// MaxDimension bounds a frame's width and height in pixels. With MaxFrameBytes it fixes the
// most memory one camera's detector can hold, whatever a camera sends.
const MaxDimension = 8192

// Grid is a frame's luma reduced to one cell per 8x8 block of pixels: ceil(width/8) by
// ceil(height/8) cells, each the mean brightness of its block. For JPEG it is the DC term of
// each luma block, which is that mean; for raw frames it is computed to match.
type Grid struct {
	// W and H are the grid's size in cells.
	W, H int
	// Pix holds W*H cells, row by row.
	Pix []uint8

	// acc is scratch for the raw reductions, kept so steady state allocates nothing.
	acc []uint64
}

// GridSize returns the grid size, in cells, of a frame of width by height pixels.
func GridSize(width, height int) (w, h int) {
	return (width + 7) / 8, (height + 7) / 8
}

// At returns the cell at column x, row y.
func (g *Grid) At(x, y int) uint8 {
	return g.Pix[y*g.W+x]
}

// resize sets the grid's size, reusing its memory when it is large enough.
func (g *Grid) resize(w, h int) {
	n := w * h
	if cap(g.Pix) < n {
		g.Pix = make([]uint8, n)
	}
	g.Pix = g.Pix[:n]
	g.W, g.H = w, h
}

// lanes16 masks the even bytes of a little-endian word into four 16-bit lanes.
const lanes16 = 0x00FF00FF00FF00FF

// ReduceYUYV reduces a YUYV 4:2:2 frame (Y0 U Y1 V per two pixels) of width by height pixels,
// rows stride bytes apart, to dst. Cells at a right or bottom edge that is not a multiple of
// 8 are the mean of the pixels they cover.
func ReduceYUYV(dst *Grid, frame []byte, width, height, stride int) error {
	if width%2 != 0 {
		return fmt.Errorf("%w: YUYV width %d is odd", ErrFrameSize, width)
	}
	if err := checkRaw(len(frame), width, height, stride, 2); err != nil {
		return fmt.Errorf("YUYV frame: %w", err)
	}
	reduce(dst, frame, width, height, stride, 2)
	return nil
}

// ReduceGray reduces an 8-bit grayscale frame of width by height pixels, rows stride bytes
// apart, to dst. Edge cells are handled as in ReduceYUYV.
func ReduceGray(dst *Grid, frame []byte, width, height, stride int) error {
	if err := checkRaw(len(frame), width, height, stride, 1); err != nil {
		return fmt.Errorf("gray frame: %w", err)
	}
	reduce(dst, frame, width, height, stride, 1)
	return nil
}

func checkRaw(n, width, height, stride, bpp int) error {
	switch {
	case width <= 0 || height <= 0:
		return fmt.Errorf("%w: %dx%d", ErrFrameSize, width, height)
	case width > MaxDimension || height > MaxDimension:
		return fmt.Errorf("%w: %dx%d exceeds %d pixels a side", ErrTooLarge, width, height, MaxDimension)
	case stride < width*bpp:
		return fmt.Errorf("%w: stride %d is shorter than a row of %d bytes", ErrFrameSize, stride, width*bpp)
	case n < (height-1)*stride+width*bpp:
		return fmt.Errorf("%w: %d bytes hold less than %dx%d pixels at stride %d", ErrFrameSize, n, width, height, stride)
	}
	return nil
}

// reduce computes block means. Whole blocks are summed eight luma samples per 64-bit load
// pair (YUYV) or load (gray): the samples fall in four 16-bit lanes that cannot overflow over
// 8 rows (8*2*255 < 65536), so one row of the frame costs two or one additions per block.
// Rows are walked in memory order to stay in cache.
func reduce(dst *Grid, frame []byte, width, height, stride, bpp int) {
	gw, gh := GridSize(width, height)
	dst.resize(gw, gh)
	fw, fh := width/8, height/8
	if cap(dst.acc) < gw {
		dst.acc = make([]uint64, gw)
	}
	acc := dst.acc[:fw]
	rowBytes := fw * 8 * bpp
	for by := 0; by < fh; by++ {
		clear(acc)
		for r := 0; r < 8; r++ {
			off := (by*8 + r) * stride
			row := frame[off : off+rowBytes]
			if bpp == 2 {
				for bx := range acc {
					p := row[bx*16 : bx*16+16]
					a := binary.LittleEndian.Uint64(p[0:8])
					c := binary.LittleEndian.Uint64(p[8:16])
					acc[bx] += a&lanes16 + c&lanes16
				}
			} else {
				for bx := range acc {
					a := binary.LittleEndian.Uint64(row[bx*8 : bx*8+8])
					acc[bx] += a&lanes16 + (a>>8)&lanes16
				}
			}
		}
		out := dst.Pix[by*gw : by*gw+fw]
		for bx, s := range acc {
			total := (s * 0x0001000100010001) >> 48 // sum of the four lanes
			out[bx] = uint8((total + 32) >> 6)
		}
	}
	// Partial blocks at the right and bottom edges: the mean of the pixels present.
	if fw < gw {
		for by := 0; by < gh; by++ {
			dst.Pix[by*gw+fw] = blockMean(frame, fw*8, width, by*8, min(by*8+8, height), stride, bpp)
		}
	}
	if fh < gh {
		for bx := 0; bx < fw; bx++ {
			dst.Pix[fh*gw+bx] = blockMean(frame, bx*8, bx*8+8, fh*8, height, stride, bpp)
		}
	}
}

// blockMean is the rounded mean luma of pixels [x0,x1) x [y0,y1).
func blockMean(frame []byte, x0, x1, y0, y1, stride, bpp int) uint8 {
	sum, n := 0, 0
	for y := y0; y < y1; y++ {
		row := frame[y*stride:]
		for x := x0; x < x1; x++ {
			sum += int(row[x*bpp])
			n++
		}
	}
	return uint8((sum + n/2) / n)
}
