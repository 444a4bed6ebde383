package httpapitest

import (
	"net/http/httptest"
	"testing"

	"github.com/dynago/dynago/httpapi"
)

// Serve runs the real HTTP API over b on n loopback listeners, closed when
// the test ends, and returns their host:port addresses. n > 1 gives a fake
// cluster whose requests may enter at any node and all reach one backend,
// as a client or a benchmark spreading its requests sees it.
func Serve(t testing.TB, b httpapi.Backend, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		srv := httptest.NewServer(httpapi.New(b, httpapi.Options{}))
		t.Cleanup(srv.Close)
		addrs[i] = srv.Listener.Addr().String()
	}
	return addrs
}
