// Package motion detects motion in camera frames cheaply enough to run on every frame of
// every camera of a Raspberry Pi.
//
// Frames are reduced to a luma grid of one cell per 8x8 pixels: YUYV and gray frames by
// averaging blocks, MJPEG frames by Huffman-decoding only the luma DC coefficients
// (JPEGReader), which equals libjpeg's 1/8-scale grayscale decode without its IDCT, colour
// conversion or upsampling. A Detector compares each grid with an adaptive background and
// turns runs of motion frames into events. Settings mirror the Camera resource's
// spec.motion; docs/motion.md explains them.
//
// Nothing here is safe for concurrent use: the agent keeps one Detector per camera and
// calls it from that camera's goroutine. After the first frames of a size, a Detector
// allocates nothing per frame, and its memory is bounded by MaxFrameBytes and MaxDimension.
package motion
