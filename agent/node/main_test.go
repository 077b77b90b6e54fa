package node

import (
	"testing"

	"github.com/camfleet/camfleet/internal/testenv"
)

// env is one real API server and etcd for the package's tests.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }
