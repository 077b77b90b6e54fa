package controllers

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValue(t *testing.T) {
	if got := labelValue("worker"); got != "worker" {
		t.Errorf("short name changed to %q", got)
	}
	long := strings.Repeat("a.b-", 60) + "z"
	a, b := labelValue(long), labelValue(long[:len(long)-1]+"y")
	if errs := validation.IsValidLabelValue(a); len(errs) > 0 || a == b {
		t.Errorf("label value %q: %v (another name gave %q)", a, errs, b)
	}
}
