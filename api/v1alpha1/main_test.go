package v1alpha1_test

import (
	"testing"

	"github.com/camfleet/camfleet/internal/testenv"
)

// env is one real API server and etcd for the whole package.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }
