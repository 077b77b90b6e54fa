package stream

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tryWritev writes the three pieces with one non-blocking writev and returns how many bytes
// the socket took, or -1 when it took none or failed (the client's goroutine then writes
// the part itself and meets the error, if any).
func tryWritev(raw syscall.RawConn, a, b, c []byte) int {
	n := -1
	err := raw.Write(func(fd uintptr) bool {
		if m, err := unix.Writev(int(fd), [][]byte{a, b, c}); err == nil {
			n = m
		}
		return true // one attempt: never wait for the socket
	})
	if err != nil {
		return -1
	}
	return n
}

// inlineSupported says whether this platform writes parts inline.
const inlineSupported = true
