package motion

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// MaxFrameBytes bounds one compressed frame. A reader's buffers never grow past it (plus a
// small constant), so a camera sending garbage cannot make the agent grow.
const MaxFrameBytes = 8 << 20

// entropyPad is the zeroed tail kept after the unstuffed entropy-coded data. The decoder
// checks its position once per MCU and one MCU reads at most 10 blocks of 64 codes of at
// most 31 bits each (about 2.5 KiB), so it never reads past the pad whatever the data.
const entropyPad = 4096

// JPEGReader extracts the luma DC grid of baseline JPEG frames: it Huffman-decodes the scan
// that carries luma, keeps the DC coefficient of each luma block and skips everything else,
// with no IDCT, colour conversion or upsampling. The grid equals libjpeg's
// `djpeg -scale 1/8 -grayscale` output for the same frame.
//
// A JPEGReader reuses its buffers from frame to frame, so steady state allocates nothing. It
// is not safe for concurrent use; give each camera its own.
type JPEGReader struct {
	// tab holds the Huffman tables in force, [class][slot] with class 0 DC, 1 AC: the
	// standard tables until a DHT segment replaces one.
	tab [2][4]*huffTable
	// own holds the tables DHT segments defined and ownRaw the bytes each was built from:
	// a stream repeats the same tables in every frame, and comparing is cheaper than
	// building.
	own    [2][4]huffTable
	ownRaw [2][4][]byte
	// q is the DC quantizer of each quantization table, truncated to 16 bits signed as
	// libjpeg's integer IDCT uses it, so even absurd tables give djpeg's numbers.
	q    [4]int32
	qSet [4]bool

	comps          [3]component
	ncomp          int
	width, height  int
	hmax, vmax     int
	restart        int
	sof            bool
	colourChecked  bool
	jfif, adobe    bool
	adobeTransform byte

	// blocks lists the blocks of one MCU of the luma scan, in coding order.
	blocks  [10]blockRef
	nblocks int
	nscan   int

	ent  []byte  // unstuffed entropy-coded data of the luma scan, then entropyPad zeros
	segs []int32 // offset in ent where each restart interval starts
}

type component struct {
	id   byte
	h, v int
	tq   byte
}

// blockRef is one block of an MCU: its tables, whether it is luma, and its position among
// the MCU's luma blocks.
type blockRef struct {
	dc, ac *huffTable
	luma   bool
	h, v   int
}

// NewJPEGReader returns a reader with no buffers yet; the first frames size them.
func NewJPEGReader() *JPEGReader {
	return &JPEGReader{}
}

func (r *JPEGReader) reset() {
	// A frame's tables never carry over to the next frame: each MJPEG frame is a complete
	// JPEG and one without DHT means the standard tables, not the previous frame's.
	for c := range r.tab {
		for s := range r.tab[c] {
			r.tab[c][s] = nil
		}
		r.tab[c][0] = &stdTables[c][0]
		r.tab[c][1] = &stdTables[c][1]
	}
	r.qSet = [4]bool{}
	r.ncomp, r.restart, r.nblocks, r.nscan = 0, 0, 0, 0
	r.sof, r.colourChecked, r.jfif, r.adobe = false, false, false, false
}

// DecodeDC fills dst with the DC grid of the luma of one JPEG frame: ceil(width/8) by
// ceil(height/8) cells. On error dst holds no meaningful grid; the error wraps one of the
// package's Err values.
func (r *JPEGReader) DecodeDC(data []byte, dst *Grid) error {
	if stdTablesErr != nil {
		return stdTablesErr
	}
	if len(data) > MaxFrameBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxFrameBytes)
	}
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return ErrNotJPEG
	}
	r.reset()
	i := 2
	for {
		// Stray bytes between segments and fill bytes before a marker are skipped, as
		// libjpeg does (with a warning): some cameras pad their frames.
		for i < len(data) && data[i] != 0xFF {
			i++
		}
		for i < len(data) && data[i] == 0xFF {
			i++
		}
		if i >= len(data) {
			return fmt.Errorf("%w: no luma scan before the end of the data", ErrTruncated)
		}
		m := data[i]
		i++
		switch {
		case m == 0xD9:
			return fmt.Errorf("%w: end of image before a luma scan", ErrCorrupt)
		case m == 0xD8:
			return fmt.Errorf("%w: second start-of-image marker", ErrCorrupt)
		case m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7):
			continue // markers without a length: nothing to skip
		}
		if i+2 > len(data) {
			return fmt.Errorf("%w: in marker 0x%02X", ErrTruncated, m)
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 {
			return fmt.Errorf("%w: marker 0x%02X has length %d", ErrCorrupt, m, n)
		}
		if i+n > len(data) {
			return fmt.Errorf("%w: in marker 0x%02X", ErrTruncated, m)
		}
		seg := data[i+2 : i+n]
		i += n
		var err error
		switch m {
		case 0xC0, 0xC1:
			err = r.parseSOF(seg)
		case 0xC2:
			err = ErrProgressive
		case 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xCC:
			err = ErrArithmetic
		case 0xC3, 0xC5, 0xC6, 0xC7, 0xC8, 0xDE, 0xDF:
			err = fmt.Errorf("%w: lossless or hierarchical JPEG (marker 0x%02X)", ErrUnsupported, m)
		case 0xDC:
			err = fmt.Errorf("%w: DNL marker", ErrUnsupported)
		case 0xC4:
			err = r.parseDHT(seg)
		case 0xDB:
			err = r.parseDQT(seg)
		case 0xDD:
			if len(seg) != 2 {
				return fmt.Errorf("%w: DRI length %d", ErrCorrupt, len(seg))
			}
			r.restart = int(binary.BigEndian.Uint16(seg))
		case 0xE0:
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				r.jfif = true
			}
		case 0xEE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				r.adobe, r.adobeTransform = true, seg[11]
			}
		case 0xDA:
			var luma bool
			luma, err = r.parseSOS(seg)
			if err != nil {
				return err
			}
			if luma {
				// The luma scan is all motion needs; chroma scans after it are not read.
				return r.decodeScan(data, i, dst)
			}
			i, err = skipEntropy(data, i)
		}
		if err != nil {
			return err
		}
	}
}

func (r *JPEGReader) parseSOF(seg []byte) error {
	if r.sof {
		return fmt.Errorf("%w: second frame header", ErrCorrupt)
	}
	if len(seg) < 6 {
		return fmt.Errorf("%w: frame header of %d bytes", ErrCorrupt, len(seg))
	}
	if seg[0] != 8 {
		return fmt.Errorf("%w: %d-bit samples", ErrPrecision, seg[0])
	}
	h := int(binary.BigEndian.Uint16(seg[1:]))
	w := int(binary.BigEndian.Uint16(seg[3:]))
	nf := int(seg[5])
	switch {
	case h == 0:
		return fmt.Errorf("%w: height left to a DNL marker", ErrUnsupported)
	case w == 0:
		return fmt.Errorf("%w: width 0", ErrCorrupt)
	case w > MaxDimension || h > MaxDimension:
		return fmt.Errorf("%w: %dx%d exceeds %d pixels a side", ErrTooLarge, w, h, MaxDimension)
	case nf == 4:
		return fmt.Errorf("%w: 4 components (CMYK or YCCK)", ErrColorSpace)
	case nf != 1 && nf != 3:
		return fmt.Errorf("%w: %d components", ErrUnsupported, nf)
	case len(seg) != 6+3*nf:
		return fmt.Errorf("%w: frame header of %d bytes for %d components", ErrCorrupt, len(seg), nf)
	}
	r.hmax, r.vmax = 1, 1
	for c := 0; c < nf; c++ {
		p := seg[6+3*c:]
		comp := component{id: p[0], h: int(p[1] >> 4), v: int(p[1] & 15), tq: p[2]}
		if comp.h < 1 || comp.h > 4 || comp.v < 1 || comp.v > 4 || comp.tq > 3 {
			return fmt.Errorf("%w: component %d sampling %dx%d table %d", ErrCorrupt, c, comp.h, comp.v, comp.tq)
		}
		r.comps[c] = comp
		r.hmax, r.vmax = max(r.hmax, comp.h), max(r.vmax, comp.v)
	}
	if r.comps[0].h != r.hmax || r.comps[0].v != r.vmax {
		return fmt.Errorf("%w: luma sampled below chroma", ErrUnsupported)
	}
	r.width, r.height, r.ncomp, r.sof = w, h, nf, true
	return nil
}

func (r *JPEGReader) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&15
		size := 64
		if pq == 1 {
			size = 128
		}
		if pq > 1 || tq > 3 || len(seg) < 1+size {
			return fmt.Errorf("%w: quantization table header 0x%02X", ErrCorrupt, seg[0])
		}
		q0 := uint16(seg[1])
		if pq == 1 {
			q0 = binary.BigEndian.Uint16(seg[1:])
		}
		r.q[tq] = int32(int16(q0))
		r.qSet[tq] = true
		seg = seg[1+size:]
	}
	return nil
}

func (r *JPEGReader) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return fmt.Errorf("%w: Huffman table header", ErrCorrupt)
		}
		tc, th := seg[0]>>4, seg[0]&15
		if tc > 1 || th > 3 {
			return fmt.Errorf("%w: Huffman table class %d slot %d", ErrCorrupt, tc, th)
		}
		total := 0
		for _, c := range seg[1:17] {
			total += int(c)
		}
		if len(seg) < 17+total {
			return fmt.Errorf("%w: Huffman table of %d symbols in %d bytes", ErrCorrupt, total, len(seg)-17)
		}
		raw := seg[:17+total]
		t := &r.own[tc][th]
		if !bytes.Equal(r.ownRaw[tc][th], raw) {
			if err := t.build(raw[1:17], raw[17:], tc == 1); err != nil {
				r.ownRaw[tc][th] = r.ownRaw[tc][th][:0]
				return err
			}
			r.ownRaw[tc][th] = append(r.ownRaw[tc][th][:0], raw...)
		}
		r.tab[tc][th] = t
		seg = seg[17+total:]
	}
	return nil
}

// checkColour refuses 3-component frames that libjpeg would take for RGB, using libjpeg's
// rules: JFIF means YCbCr; otherwise an Adobe marker's transform decides; otherwise the
// component IDs 'R','G','B' mean RGB.
func (r *JPEGReader) checkColour() error {
	if r.ncomp != 3 || r.jfif {
		return nil
	}
	rgb := r.comps[0].id == 'R' && r.comps[1].id == 'G' && r.comps[2].id == 'B'
	if r.adobe {
		rgb = r.adobeTransform == 0
	}
	if rgb {
		return fmt.Errorf("%w: RGB JPEG", ErrColorSpace)
	}
	return nil
}

// parseSOS reads a scan header and reports whether the scan carries luma; if so it prepares
// the MCU's block list.
func (r *JPEGReader) parseSOS(seg []byte) (bool, error) {
	if !r.sof {
		return false, fmt.Errorf("%w: scan before frame header", ErrCorrupt)
	}
	if !r.colourChecked {
		if err := r.checkColour(); err != nil {
			return false, err
		}
		r.colourChecked = true
	}
	if len(seg) < 1 {
		return false, fmt.Errorf("%w: empty scan header", ErrCorrupt)
	}
	ns := int(seg[0])
	if ns < 1 || ns > r.ncomp || len(seg) != 1+2*ns+3 {
		return false, fmt.Errorf("%w: scan header for %d components in %d bytes", ErrCorrupt, ns, len(seg))
	}
	var idx [4]int
	luma := false
	for j := 0; j < ns; j++ {
		idx[j] = -1
		for c := 0; c < r.ncomp; c++ {
			if r.comps[c].id == seg[1+2*j] {
				idx[j] = c
			}
		}
		if idx[j] < 0 {
			return false, fmt.Errorf("%w: scan names unknown component %d", ErrCorrupt, seg[1+2*j])
		}
		luma = luma || idx[j] == 0
	}
	if !luma {
		return false, nil
	}
	if !r.qSet[r.comps[0].tq] {
		return false, fmt.Errorf("%w: quantization table %d not defined", ErrCorrupt, r.comps[0].tq)
	}
	nb := 0
	for j := 0; j < ns; j++ {
		td, ta := seg[2+2*j]>>4, seg[2+2*j]&15
		if td > 3 || ta > 3 || r.tab[0][td] == nil || r.tab[1][ta] == nil {
			return false, fmt.Errorf("%w: Huffman tables %d/%d not defined", ErrCorrupt, td, ta)
		}
		c := r.comps[idx[j]]
		hs, vs := c.h, c.v
		if ns == 1 {
			hs, vs = 1, 1 // a non-interleaved scan's MCU is one block
		}
		if nb+hs*vs > len(r.blocks) {
			return false, fmt.Errorf("%w: more than %d blocks per MCU", ErrCorrupt, len(r.blocks))
		}
		for v := 0; v < vs; v++ {
			for h := 0; h < hs; h++ {
				r.blocks[nb] = blockRef{dc: r.tab[0][td], ac: r.tab[1][ta], luma: idx[j] == 0, h: h, v: v}
				nb++
			}
		}
	}
	r.nblocks, r.nscan = nb, ns
	return true, nil
}

// decodeScan unstuffs the luma scan that starts at data[start] and decodes it into dst.
func (r *JPEGReader) decodeScan(data []byte, start int, dst *Grid) error {
	gw, gh := GridSize(r.width, r.height)
	// A non-interleaved scan codes the component's own block grid; luma has the largest
	// sampling factors, so that grid is the pixel grid in blocks. An interleaved scan codes
	// whole MCUs, whose luma blocks past the image edge are padding.
	mcusX, mcusY, lumaH, lumaV := gw, gh, 1, 1
	if r.nscan > 1 {
		mcusX = (r.width + 8*r.hmax - 1) / (8 * r.hmax)
		mcusY = (r.height + 8*r.vmax - 1) / (8 * r.vmax)
		lumaH, lumaV = r.comps[0].h, r.comps[0].v
	}
	total := mcusX * mcusY
	nseg := 1
	if r.restart > 0 {
		nseg = (total + r.restart - 1) / r.restart
	}
	if err := r.unstuff(data, start, nseg); err != nil {
		return err
	}
	dataLen := len(r.ent) - entropyPad
	if len(r.segs) == nseg+1 && int(r.segs[nseg]) == dataLen {
		r.segs = r.segs[:nseg] // a restart marker after the last interval: harmless
	}
	if len(r.segs) != nseg {
		return fmt.Errorf("%w: %d restart intervals, want %d", ErrCorrupt, len(r.segs), nseg)
	}
	dst.resize(gw, gh)
	return r.decodeEntropy(dst, mcusX, total, lumaH, lumaV, r.q[r.comps[0].tq])
}

// unstuff copies the entropy-coded data starting at data[start] into r.ent without its
// stuffed zero bytes, noting where each restart interval starts, and stops at the first
// marker that is not a restart marker. More than nseg+1 intervals is an error, which keeps
// r.segs within what the frame's size justifies.
func (r *JPEGReader) unstuff(data []byte, start, nseg int) error {
	if need := len(data) - start + entropyPad; cap(r.ent) < need {
		r.ent = make([]byte, 0, need)
	}
	ent := r.ent[:0]
	segs := append(r.segs[:0], 0)
	i := start
	for {
		j := bytes.IndexByte(data[i:], 0xFF)
		if j < 0 || i+j+1 >= len(data) {
			r.ent, r.segs = ent, segs
			return fmt.Errorf("%w: scan data not terminated by a marker", ErrTruncated)
		}
		ent = append(ent, data[i:i+j]...)
		i += j
		switch b := data[i+1]; {
		case b == 0x00:
			ent = append(ent, 0xFF)
			i += 2
		case b >= 0xD0 && b <= 0xD7:
			if len(segs) > nseg {
				r.ent, r.segs = ent, segs
				return fmt.Errorf("%w: more than %d restart intervals", ErrCorrupt, nseg)
			}
			segs = append(segs, int32(len(ent)))
			i += 2
		case b == 0xFF:
			i++ // fill byte
		default:
			n := len(ent)
			ent = ent[:n+entropyPad]
			clear(ent[n:])
			r.ent, r.segs = ent, segs
			return nil
		}
	}
}

// skipEntropy returns the offset of the marker that ends the scan starting at data[start].
func skipEntropy(data []byte, start int) (int, error) {
	i := start
	for {
		j := bytes.IndexByte(data[i:], 0xFF)
		if j < 0 || i+j+1 >= len(data) {
			return 0, fmt.Errorf("%w: scan data not terminated by a marker", ErrTruncated)
		}
		i += j
		b := data[i+1]
		switch {
		case b == 0x00 || (b >= 0xD0 && b <= 0xD7):
			i += 2
		case b == 0xFF:
			i++
		default:
			return i, nil
		}
	}
}

// decodeEntropy Huffman-decodes the unstuffed scan in r.ent. The bit reader lives in local
// variables (acc holds nbits valid bits at its top) so that the compiler keeps it in
// registers; it refills 8 bytes at a time, which the zero pad after the data makes safe.
// Before each code at least 32 bits are in acc, enough for a 16-bit code and 15 extra bits.
func (r *JPEGReader) decodeEntropy(dst *Grid, mcusX, total, lumaH, lumaV int, q int32) error {
	buf := r.ent
	dataLen := len(buf) - entropyPad
	limit := dataLen + 16
	blocks := r.blocks[:r.nblocks]
	pix := dst.Pix
	gw, gh := dst.W, dst.H
	ri := r.restart
	if ri == 0 {
		ri = total
	}
	mx, my, mcu := 0, 0, 0
	for s := 0; mcu < total; s++ {
		pos := int(r.segs[s])
		segEnd := dataLen
		if s+1 < len(r.segs) {
			segEnd = int(r.segs[s+1])
		}
		var acc uint64
		var nbits uint
		pred := int32(0)
		for n := min(ri, total-mcu); n > 0; n-- {
			if pos > limit {
				return fmt.Errorf("%w: entropy-coded data ends at MCU %d of %d", ErrTruncated, mcu, total)
			}
			for bi := range blocks {
				b := &blocks[bi]
				if nbits < 32 {
					acc |= binary.BigEndian.Uint64(buf[pos:]) >> nbits
					adv := (63 - nbits) >> 3
					pos += int(adv)
					nbits += adv << 3
				}
				// DC: the luma's value is kept, other components' are skipped.
				var l, size uint
				if e := b.dc.look[acc>>(64-lutBits)]; e&31 != 0 {
					l, size = uint(e&31), uint(e>>8)
				} else {
					var sym byte
					l, sym = b.dc.slowSymbol(acc)
					if l == 0 {
						return fmt.Errorf("%w: bad Huffman code at MCU %d", ErrCorrupt, mcu)
					}
					size = uint(sym)
				}
				acc <<= l & 31
				if b.luma {
					if size != 0 {
						v := int32(acc >> (64 - size))
						if v < 1<<(size-1) {
							v += -1<<size + 1
						}
						pred += v
					}
					x, y := mx*lumaH+b.h, my*lumaV+b.v
					if x < gw && y < gh {
						pix[y*gw+x] = dcLuma(pred, q)
					}
				}
				acc <<= size & 15
				nbits -= l + size
				// AC: decoded only to find where the next block starts.
				ac := b.ac
				for k := 1; k < 64; {
					if nbits < 32 {
						acc |= binary.BigEndian.Uint64(buf[pos:]) >> nbits
						adv := (63 - nbits) >> 3
						pos += int(adv)
						nbits += adv << 3
					}
					if e := ac.skip[acc>>(64-lutBits)]; e != 0 {
						if k+int(e>>24) < 64 {
							c := uint(e) & 31
							acc <<= c
							nbits -= c
							k += int(e>>8) & 0xFF
						} else {
							// Two coefficients, and the first ends the block.
							c := uint(e>>16) & 31
							acc <<= c
							nbits -= c
							k = 64
						}
						continue
					}
					var sym byte
					if e := ac.look[acc>>(64-lutBits)]; e&31 != 0 {
						l, sym = uint(e&31), byte(e>>8)
					} else {
						l, sym = ac.slowSymbol(acc)
						if l == 0 {
							return fmt.Errorf("%w: bad Huffman code at MCU %d", ErrCorrupt, mcu)
						}
					}
					size = uint(sym & 15)
					acc <<= (l + size) & 63
					nbits -= l + size
					if size != 0 {
						k += int(sym>>4) + 1
					} else if sym>>4 == 15 {
						k += 16
					} else {
						break
					}
				}
			}
			mcu++
			mx++
			if mx == mcusX {
				mx, my = 0, my+1
			}
		}
		if used := pos*8 - int(nbits); used > segEnd*8 {
			return fmt.Errorf("%w: entropy-coded data overruns restart interval %d", ErrCorrupt, s)
		}
	}
	return nil
}

// dcLuma turns a luma DC coefficient into the block's mean brightness exactly as libjpeg's
// 1/8-scale IDCT does: dequantize in 16-bit integers, divide by 8 rounding half up, add 128,
// and limit through its 1024-entry range table, which wraps values beyond ±512.
func dcLuma(dc, q int32) uint8 {
	v := (int32(int16(dc))*q + 4) >> 3
	v = (v<<22)>>22 + 128
	return uint8(min(max(v, 0), 255))
}
