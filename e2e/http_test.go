package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: 15 * time.Second}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func call(t *testing.T, method, url string, body []byte, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("status %d body %q: %v", r.Status, r.Body, err)
	}
}

func (r response) context() string { return r.Header.Get("X-Dynago-Context") }

// errorBody checks a JSON error body and returns its code.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct{ Error, Code string }
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("error response with content type %q, want JSON: %q", r.Header.Get("Content-Type"), r.Body)
	}
	r.json(t, &e)
	if e.Error == "" || e.Code == "" {
		t.Errorf("error body %q lacks error or code", r.Body)
	}
	return e.Code
}

type placement struct {
	Key            string   `json:"key"`
	Partition      int      `json:"partition"`
	PreferenceList []string `json:"preference_list"`
	Fallbacks      []string `json:"fallbacks"`
}

type siblingsBody struct {
	Key      string   `json:"key"`
	Context  string   `json:"context"`
	Siblings [][]byte `json:"siblings"`
}

type localBody struct {
	Key      string `json:"key"`
	Node     string `json:"node"`
	Siblings []struct {
		Value   []byte `json:"value"`
		Deleted bool   `json:"deleted"`
	} `json:"siblings"`
	Context string `json:"context"`
}
