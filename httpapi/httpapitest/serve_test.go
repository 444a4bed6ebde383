package httpapitest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A write through one node of Serve's fake cluster is read back through
// the other: both front the same backend.
func TestServeNodesShareOneBackend(t *testing.T) {
	addrs := Serve(t, New(), 2)
	if len(addrs) != 2 || addrs[0] == addrs[1] || !strings.HasPrefix(addrs[0], "127.0.0.1:") {
		t.Fatalf("Serve(2) = %v, want two distinct 127.0.0.1 addresses", addrs)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+addrs[0]+"/kv/k", strings.NewReader("v"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT via %s: %s", addrs[0], resp.Status)
	}
	resp, err = http.Get("http://" + addrs[1] + "/kv/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "v" {
		t.Fatalf("GET via %s: %s %q, want 200 \"v\"", addrs[1], resp.Status, body)
	}
}
