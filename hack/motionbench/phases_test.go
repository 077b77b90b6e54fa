package main

import "testing"

func TestClassifyPutsEventsInTheirPhase(t *testing.T) {
	// still [0,5), moving [5,10), still [10,15), moving [15,20), still [20,...)
	starts := []float64{0, 5, 10, 15, 20}
	moving := []bool{false, true, false, true, false}
	tests := []struct {
		name   string
		events []float64
		want   detection
	}{
		{"none", nil, detection{Phases: 2}},
		{"one per moving phase", []float64{5.2, 15.1}, detection{Moving: 2, Covered: 2, Phases: 2}},
		{"late start within the margin counts for the phase before", []float64{10.8}, detection{Moving: 1, Covered: 1, Phases: 2}},
		{"start in a still phase after the margin is false", []float64{11.5, 2}, detection{Still: 2, Phases: 2}},
		{"the first still phase has no phase before it", []float64{0.5}, detection{Still: 1, Phases: 2}},
		{"before the timeline is another run's", []float64{-3}, detection{Phases: 2}},
		{"two events in one phase cover it once", []float64{6, 8}, detection{Moving: 2, Covered: 1, Phases: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(starts, moving, tt.events, 1); got != tt.want {
				t.Errorf("classify(%v) = %+v, want %+v", tt.events, got, tt.want)
			}
		})
	}
}

func TestClassifyCountsAnUnfinishedMovingPhaseOnlyWithAnEvent(t *testing.T) {
	starts, moving := []float64{0, 5}, []bool{false, true}
	if got := classify(starts, moving, nil, 1); got.Phases != 0 {
		t.Errorf("an unfinished moving phase without events counted: %+v", got)
	}
	if got := classify(starts, moving, []float64{6}, 1); got.Phases != 1 || got.Covered != 1 {
		t.Errorf("an unfinished moving phase with an event not counted: %+v", got)
	}
}
