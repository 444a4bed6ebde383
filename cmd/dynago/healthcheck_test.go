package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
)

func TestHealthcheckAsksTheNode(t *testing.T) {
	srv := httptest.NewServer(httpapi.New(httpapitest.New(), httpapi.Options{}))
	t.Cleanup(srv.Close)
	out := mustRun(t, "healthcheck", "--addr", srv.Listener.Addr().String())
	if !strings.HasSuffix(out, " ok\n") {
		t.Fatalf("healthcheck printed %q, want the node's ID and ok", out)
	}
}

func TestHealthcheckDefaultsToOwnNode(t *testing.T) {
	srv := httptest.NewServer(httpapi.New(httpapitest.New(), httpapi.Options{}))
	t.Cleanup(srv.Close)
	// As in the container: the server is told to bind every interface.
	port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":")+1:]
	t.Setenv("DYNAGO_HTTP_ADDR", "0.0.0.0:"+port)
	mustRun(t, "healthcheck")
}

func TestHealthcheckFails(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>some other server</html>"))
	}))
	t.Cleanup(other.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedAddr := closed.Listener.Addr().String()
	closed.Close()
	for name, addr := range map[string]string{"503": down.Listener.Addr().String(), "not dynago": other.Listener.Addr().String(), "nothing listening": closedAddr} {
		if out, err := run(t, "", "healthcheck", "--addr", addr, "--timeout", "2s"); err == nil {
			t.Errorf("%s: healthcheck succeeded (%q), want an error", name, out)
		}
	}
	if _, err := run(t, "", "healthcheck", "--addr", "no-port"); !errors.Is(err, errUsage) {
		t.Errorf("--addr without a port: got %v, want a usage error", err)
	}
}
