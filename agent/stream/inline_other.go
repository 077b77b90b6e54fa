//go:build !linux

package stream

import "syscall"

func tryWritev(syscall.RawConn, []byte, []byte, []byte) int { return -1 }

// inlineSupported says whether this platform writes parts inline.
const inlineSupported = false
