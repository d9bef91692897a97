package orders_test

import (
	"net/http"
	"testing"

	"github.com/metropolis-dev/metro/examples/shop/orders"
	"github.com/metropolis-dev/metro/metrotest"
)

// TestRecordedSession replays a session recorded with metro tap --record
// (see ../record_test.go, which rewrites it with -update) against the
// order desk in process. The desk's calls to the catalog are answered
// from the catalog's replies in the same recording, so neither NATS nor
// the catalog is needed. Order ids depend on what came before, so they
// are left out.
func TestRecordedSession(t *testing.T) {
	const session = "testdata/session.ndjson"
	mux := http.NewServeMux()
	desk := orders.New(metrotest.Mock(t, session, "catalog"))
	for pattern, h := range desk.Routes() {
		mux.HandleFunc(pattern, h)
	}
	metrotest.Replay(t, mux, session, metrotest.Worker("orders"), metrotest.Ignore("$.id"))
}
