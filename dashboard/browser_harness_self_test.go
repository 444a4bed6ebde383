package dashboard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The dashboard test's "no console errors" check passes vacuously if the
// listener never hears anything; this proves it hears both kinds.
func TestBrowserHarnessSeesConsoleErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium; skipped in -short")
	}
	exe := requireChromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>t</title><script>
console.log("fine");
console.error("logged-error");
Promise.reject(new Error("rejected-promise"));
setTimeout(() => { throw new Error("thrown-error") }, 0);
</script>`))
	}))
	defer srv.Close()
	b := newBrowser(t, t.Context(), exe)
	b.run(t, "opening the page", chromedp.Navigate(srv.URL))
	b.waitFor(t, "three errors recorded", 20*time.Second, func() error {
		errs := strings.Join(b.consoleErrors(), "\n")
		for _, want := range []string{"logged-error", "rejected-promise", "thrown-error"} {
			if !strings.Contains(errs, want) {
				return fmt.Errorf("missing %q in %q", want, errs)
			}
		}
		if strings.Contains(errs, "fine") {
			return fmt.Errorf("console.log recorded as an error: %q", errs)
		}
		return nil
	})
}
