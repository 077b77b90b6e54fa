package motion

import (
	"fmt"
)

// lutBits is how many bits of the stream one table lookup resolves. Eleven bits resolve
// nearly every code of camera frames in one step and keep the two AC tables in use (8 KiB
// each) within a 32 KiB L1 cache, as on a Raspberry Pi 4.
const lutBits = 11

// huffTable is one Huffman table prepared for decoding. Besides the usual symbol lookup it
// holds a "skip" lookup: motion needs no AC coefficient values, so a code and the extra bits
// that follow it are consumed in one step, and two of them when both fit in lutBits.
type huffTable struct {
	// look maps the next lutBits bits to the code length (low 5 bits; 0 when the code is
	// longer) and the symbol (high 8 bits).
	look [1 << lutBits]uint16
	// skip maps the next lutBits bits to whole coefficients (codes plus extra bits); 0 when
	// the code is longer than lutBits. Bits 0-4: bits to consume; bits 8-15: how far the coefficient
	// index advances (run+1, 16 for ZRL, 64 for end of block). When the entry holds two
	// coefficients, bits 16-20 and 24-31 give the same for the first one alone, which is
	// all that belongs to the block if it reaches the block's end; otherwise they are 0.
	skip [1 << lutBits]uint32
	// maxcode[l] is the largest code of length l, or -1 when there is none; maxcode[17] is a
	// sentinel that ends the slow search.
	maxcode [18]int32
	// valoff[l] turns a code of length l into an index of vals.
	valoff [17]int32
	vals   [256]uint8
}

// build prepares the table from a DHT's 16 code-length counts and its symbols, checking it
// the way libjpeg does so that every table libjpeg rejects is rejected here too.
func (t *huffTable) build(counts []byte, vals []byte, ac bool) error {
	if len(counts) != 16 {
		return fmt.Errorf("%w: Huffman table has %d length counts, want 16", ErrCorrupt, len(counts))
	}
	total := 0
	for _, c := range counts {
		total += int(c)
	}
	if total > 256 || total != len(vals) {
		return fmt.Errorf("%w: Huffman table declares %d symbols and holds %d", ErrCorrupt, total, len(vals))
	}
	if !ac {
		for _, v := range vals {
			// A DC symbol is a bit count; libjpeg refuses anything above 15.
			if v > 15 {
				return fmt.Errorf("%w: DC Huffman symbol %d is out of range", ErrCorrupt, v)
			}
		}
	}
	clear(t.look[:])
	copy(t.vals[:], vals)
	code := int32(0)
	k := int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.valoff[l] = k - code
		if n == 0 {
			t.maxcode[l] = -1
			code <<= 1
			continue
		}
		for i := int32(0); i < n; i++ {
			// The all-ones code of each length is reserved (libjpeg rejects a table that
			// assigns it); checking before assigning keeps every code inside the lookup.
			if code >= 1<<l-1 {
				return fmt.Errorf("%w: Huffman table overflows %d-bit codes", ErrCorrupt, l)
			}
			if l <= lutBits {
				shift := lutBits - l
				first := int(code) << shift
				for j := first; j < first+1<<shift; j++ {
					t.look[j] = uint16(l) | uint16(vals[k])<<8
				}
			}
			code++
			k++
		}
		t.maxcode[l] = code - 1
		code <<= 1
	}
	t.maxcode[17] = 1<<31 - 1
	t.buildSkip(ac)
	return nil
}

// coefficient returns the extra bits after a symbol and how far it advances the
// coefficient index.
func coefficient(sym byte, ac bool) (size, step uint32) {
	if !ac {
		return uint32(sym), 1
	}
	run, size := uint32(sym>>4), uint32(sym&15)
	switch {
	case size != 0:
		return size, run + 1
	case run == 15:
		return 0, 16
	default:
		return 0, 64 // end of block, as libjpeg treats every run with size 0 but ZRL
	}
}

func (t *huffTable) buildSkip(ac bool) {
	const mask = 1<<lutBits - 1
	for i := range t.skip {
		t.skip[i] = 0
		e1 := t.look[i]
		l1 := uint32(e1 & 31)
		if l1 == 0 {
			continue
		}
		// The extra bits need not lie within the lookup: the decoder always holds enough
		// bits for a code and its extra bits (at most 16+15), so one step consumes any
		// coefficient whose code fits, however many extra bits a noisy frame gives it.
		size1, step1 := coefficient(byte(e1>>8), ac)
		bits1 := l1 + size1
		t.skip[i] = bits1 | step1<<8
		if !ac || step1 >= 64 || bits1 >= lutBits {
			continue
		}
		// The bits after the first coefficient, zero-filled; a second code only counts if
		// it and its extra bits lie within the real ones.
		e2 := t.look[(i<<bits1)&mask]
		l2 := uint32(e2 & 31)
		if l2 == 0 {
			continue
		}
		size2, step2 := coefficient(byte(e2>>8), ac)
		if bits1+l2+size2 > lutBits {
			continue
		}
		t.skip[i] = (bits1 + l2 + size2) | (step1+step2)<<8 | bits1<<16 | step1<<24
	}
}

// slowSymbol decodes a code longer than lutBits from the top of acc, which must hold at
// least 16 valid bits. It returns the code length and symbol, or length 0 for a bit pattern
// that is no code of this table (corrupt data).
func (t *huffTable) slowSymbol(acc uint64) (uint, byte) {
	l := uint(lutBits + 1)
	code := int32(acc >> (64 - l))
	for code > t.maxcode[l] {
		l++
		code = int32(acc >> (64 - l))
	}
	if l > 16 {
		return 0, 0
	}
	return l, t.vals[uint8(t.valoff[l]+code)]
}

// Standard Huffman tables of the JPEG specification, Annex K.3, which frames without a DHT
// segment (most UVC webcams' MJPEG) are decoded with, as libjpeg does.
var (
	stdDCLumaCounts   = []byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}
	stdDCLumaVals     = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	stdDCChromaCounts = []byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}
	stdDCChromaVals   = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	stdACLumaCounts   = []byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d}
	stdACLumaVals     = []byte{
		0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
		0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
		0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
		0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
		0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
		0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
		0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
		0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
		0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
		0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
		0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
		0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
		0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
		0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
		0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
		0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
		0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
		0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
		0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	}
	stdACChromaCounts = []byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77}
	stdACChromaVals   = []byte{
		0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
		0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
		0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
		0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
		0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34,
		0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
		0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
		0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
		0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
		0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
		0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
		0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
		0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
		0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
		0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
		0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
		0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
		0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
		0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
		0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	}
)

// stdTables holds the Annex K tables, built once; they are only read afterwards, so every
// reader in every goroutine shares them. Index [class][slot], class 0 = DC, 1 = AC.
// stdTablesErr can only be set by a mistake in this file; every decode reports it.
var stdTables, stdTablesErr = buildStdTables()

func buildStdTables() (*[2][2]huffTable, error) {
	t := new([2][2]huffTable)
	specs := []struct {
		class, slot  int
		counts, vals []byte
	}{
		{0, 0, stdDCLumaCounts, stdDCLumaVals},
		{0, 1, stdDCChromaCounts, stdDCChromaVals},
		{1, 0, stdACLumaCounts, stdACLumaVals},
		{1, 1, stdACChromaCounts, stdACChromaVals},
	}
	for _, s := range specs {
		if err := t[s.class][s.slot].build(s.counts, s.vals, s.class == 1); err != nil {
			return t, fmt.Errorf("standard Huffman table %d/%d: %w", s.class, s.slot, err)
		}
	}
	return t, nil
}
