package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/camfleet/camfleet/agent/motion"
)

// maskFlag collects --mask x,y,width,height values.
type maskFlag []motion.Rect

func (m *maskFlag) String() string {
	var parts []string
	for _, r := range *m {
		parts = append(parts, fmt.Sprintf("%d,%d,%d,%d", r.X, r.Y, r.W, r.H))
	}
	return strings.Join(parts, " ")
}

func (m *maskFlag) Set(v string) error {
	fields := strings.Split(v, ",")
	if len(fields) != 4 {
		return fmt.Errorf("mask %q: want x,y,width,height in per-mille", v)
	}
	var n [4]int
	for i, f := range fields {
		x, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("mask %q: %q is not an integer", v, f)
		}
		n[i] = x
	}
	*m = append(*m, motion.Rect{X: n[0], Y: n[1], W: n[2], H: n[3]})
	return nil
}
