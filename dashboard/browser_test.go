package dashboard_test

// Browser tests: a real `dynago dev` cluster, the real page in headless
// Debian chromium, and the checks a person at the page would make. They
// drive the page only through the stable element IDs of the dashboard
// spec (#status, #nodes, #console-*, #trace, ...), and cross-check what the
// page claims against the nodes' own HTTP API where that is cheap.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var update = flag.Bool("update", false, "write the dashboard screenshots to docs/screenshots (as DYNAGO_SCREENSHOTS=1 does)")

// views are the dashboard sections screenshotted into docs/screenshots:
// the file name the README links to, and the section's element ID.
var views = []struct{ file, section string }{
	{"ring", "view-ring"},
	{"nodes", "view-nodes"},
	{"console", "view-console"},
	{"history", "view-history"},
	{"gossip", "view-gossip"},
	{"antientropy", "view-ae"},
	{"events", "view-events"},
	{"experiments", "view-experiments"},
}

func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test starts a 5-node cluster and chromium; skipped in -short")
	}
	exe := requireChromium(t)
	began := time.Now()
	root := moduleRoot(t)
	bin := buildDynago(t, root)
	t.Logf("built dynago in %v", time.Since(began).Round(time.Millisecond))

	clusterStart := time.Now()
	dev := startDev(t, bin, 5)
	t.Logf("dev cluster up in %v; dashboard at %s", time.Since(clusterStart).Round(time.Millisecond), dev.dashboard)

	b := newBrowser(t, t.Context(), exe)
	// Checked last, over the whole session: no step may make the page
	// log an error or throw.
	t.Cleanup(func() {
		if errs := b.consoleErrors(); len(errs) > 0 {
			t.Errorf("the page reported %d console errors or uncaught exceptions:\n  %s", len(errs), strings.Join(errs, "\n  "))
		}
	})

	ok := t.Run("loads_and_connects", func(t *testing.T) {
		b.run(t, "opening the dashboard", chromedp.Navigate(dev.dashboard))
		took := b.waitFor(t, `#status reads "connected"`, 20*time.Second, func() error {
			var s string
			if err := b.evalErr(`(document.querySelector('#status')||{}).textContent||''`, &s); err != nil {
				return err
			}
			if !strings.Contains(strings.ToLower(s), "connected") || strings.Contains(strings.ToLower(s), "disconnected") {
				return fmt.Errorf("#status is %q", s)
			}
			return nil
		})
		t.Logf("connected after %v", took.Round(time.Millisecond))
		b.waitFor(t, "#nodes lists n1..n5", 20*time.Second, func() error {
			var ids []string
			if err := b.evalErr(`[...document.querySelectorAll('#nodes tr[data-node]')].map(r => r.dataset.node)`, &ids); err != nil {
				return err
			}
			for i := 1; i <= 5; i++ {
				if !slices.Contains(ids, fmt.Sprintf("n%d", i)) {
					return fmt.Errorf("rows: %v", ids)
				}
			}
			return nil
		})
	})
	if !ok {
		t.Fatal("the page did not load; the other steps need it")
	}

	t.Run("put_shows_trace", func(t *testing.T) {
		// Through a node outside the key's preference list, so the trace
		// must carry the coordinator's own steps back across the forward.
		var tp struct {
			PreferenceList []string `json:"preference_list"`
		}
		if err := getJSON("http://"+dev.nodeHTTP[0]+"/kv/trace-key/placement", &tp); err != nil {
			t.Fatalf("placement of trace-key: %v", err)
		}
		via := ""
		for i := 1; i <= 5 && via == ""; i++ {
			if id := fmt.Sprintf("n%d", i); !slices.Contains(tp.PreferenceList, id) {
				via = id
			}
		}
		b.setField(t, "#console-via", via)
		defer b.setField(t, "#console-via", "")
		res := b.console(t, "put", "trace-key", "hello", "")
		if !regexp.MustCompile(`\b20[04]\b`).MatchString(res) {
			t.Errorf("the PUT did not succeed; #console-result: %q", res)
		}
		b.waitFor(t, `#trace shows ≥ 2 "ack" events`, 20*time.Second, func() error {
			var n int
			if err := b.evalErr(`document.querySelectorAll('#trace li.trace-event[data-what="ack"]').length`, &n); err != nil {
				return err
			}
			var txt string
			b.evalErr(`(document.querySelector('#trace')||{}).innerText||''`, &txt)
			if n < 2 {
				return fmt.Errorf("%d ack events; #trace: %q", n, txt)
			}
			if !strings.Contains(txt, "forwarded by "+via) {
				return fmt.Errorf("#trace does not say the PUT was forwarded by %s: %q", via, txt)
			}
			return nil
		})
	})
	// Before any node is killed, every request the page makes must succeed:
	// a failed fetch shows in the browser's log even when the page copes.
	if errs := b.networkErrors(); len(errs) > 0 {
		t.Errorf("the page made %d failing requests on a healthy cluster:\n  %s", len(errs), strings.Join(errs, "\n  "))
	}

	// A key whose preference list is known: the victim is a replica but
	// not the coordinator, so the put below must fall back and leave a hint.
	hintKey := fmt.Sprintf("hint-%d", time.Now().UnixNano())
	var place struct {
		Partition      int      `json:"partition"`
		PreferenceList []string `json:"preference_list"`
		Fallbacks      []string `json:"fallbacks"`
	}
	if err := getJSON("http://"+dev.nodeHTTP[0]+"/kv/"+url.PathEscape(hintKey)+"/placement", &place); err != nil {
		t.Fatalf("placement of %s: %v", hintKey, err)
	}
	if len(place.PreferenceList) < 2 {
		t.Fatalf("placement of %s: preference list %v", hintKey, place.PreferenceList)
	}
	victim := place.PreferenceList[1]
	t.Logf("key %s: preference list %v, fallbacks %v; killing %s", hintKey, place.PreferenceList, place.Fallbacks, victim)

	killed := t.Run("kill_turns_dead", func(t *testing.T) {
		b.show(t, "view-nodes")
		b.run(t, "clicking kill on "+victim, chromedp.Click(chromedp.CSS(`tr[data-node="`+victim+`"] button.kill`)))
		took := b.waitFor(t, victim+" reads dead", 20*time.Second, func() error {
			return b.nodeStatusIs(victim, "dead")
		})
		t.Logf("%s dead on the page %v after the click", victim, took.Round(time.Millisecond))
	})

	t.Run("hint_stored_then_delivered", func(t *testing.T) {
		if !killed {
			t.Skip("needs the killed node of kill_turns_dead")
		}
		// Send through the coordinator, never through the dead node.
		b.setField(t, "#console-via", place.PreferenceList[0])
		b.console(t, "put", hintKey, "while-"+victim+"-is-down", "3")
		b.waitFor(t, "#console-local shows a hint for "+victim, 20*time.Second, func() error {
			holders, err := b.hintHolders(victim)
			if err != nil {
				return err
			}
			if len(holders) == 0 {
				var txt string
				b.evalErr(`(document.querySelector('#console-local')||{}).innerText||''`, &txt)
				return fmt.Errorf("no td.hints names %s; #console-local: %q", victim, txt)
			}
			return nil
		})

		b.show(t, "view-nodes")
		b.run(t, "clicking restart on "+victim, chromedp.Click(chromedp.CSS(`tr[data-node="`+victim+`"] button.restart`)))
		// Starting a process on a loaded machine is not what is measured;
		// the hint's delivery, once the node is back, is.
		b.waitFor(t, victim+" reads alive after restart", stepTimeout, func() error {
			return b.nodeStatusIs(victim, "alive")
		})
		took := b.waitFor(t, "the hint for "+victim+" leaves #console-local", 20*time.Second, func() error {
			// The local table is refreshed after each request: re-read.
			b.console(t, "get", hintKey, "", "")
			holders, err := b.hintHolders(victim)
			if err != nil {
				return err
			}
			if len(holders) > 0 {
				return fmt.Errorf("still held by %v", holders)
			}
			return nil
		})
		t.Logf("hint delivered %v after %s was alive again", took.Round(time.Millisecond), victim)
		// The live event log tells the same story.
		b.waitFor(t, "#events lists a hint_delivered event", 20*time.Second, func() error {
			var n int
			if err := b.evalErr(`document.querySelectorAll('#events li.event[data-kind="hint_delivered"]').length`, &n); err != nil {
				return err
			}
			if n == 0 {
				var kinds []string
				b.evalErr(`[...new Set([...document.querySelectorAll('#events li.event')].map(e => e.dataset.kind))]`, &kinds)
				return fmt.Errorf("no li.event[data-kind=hint_delivered]; kinds shown: %v", kinds)
			}
			return nil
		})
	})

	t.Run("blind_writes_siblings_resolve", func(t *testing.T) {
		key := fmt.Sprintf("siblings-%d", time.Now().UnixNano())
		b.console(t, "put", key, "a", "3")
		b.console(t, "put", key, "b", "3")
		b.console(t, "get", key, "", "")
		b.waitFor(t, "GET shows siblings a and b", 10*time.Second, func() error {
			vals, err := b.siblings()
			if err != nil {
				return err
			}
			if len(vals) != 2 || !containsValue(vals, "a") || !containsValue(vals, "b") {
				return fmt.Errorf("li.sibling texts: %q", vals)
			}
			return nil
		})
		b.run(t, "clicking resolve on the first sibling", chromedp.Click(chromedp.CSS(`#console-result li.sibling button.resolve`)))
		b.waitFor(t, "one value after resolving", 20*time.Second, func() error {
			var got struct {
				Siblings []string `json:"siblings"`
			}
			if err := getJSON("http://"+dev.nodeHTTP[0]+"/kv/"+url.PathEscape(key), &got); err != nil {
				return err
			}
			if len(got.Siblings) != 1 {
				return fmt.Errorf("node answers %d siblings", len(got.Siblings))
			}
			return nil
		})
		b.console(t, "get", key, "", "")
		b.waitFor(t, "GET shows exactly one value", 10*time.Second, func() error {
			vals, err := b.siblings()
			if err != nil {
				return err
			}
			if len(vals) != 1 {
				return fmt.Errorf("li.sibling texts: %q", vals)
			}
			return nil
		})
	})

	t.Run("experiments_defaults_and_bench", func(t *testing.T) {
		b.show(t, "view-experiments")
		// Quorums changed on the page reach every node's API.
		b.setField(t, "#defaults-r", "1")
		b.setField(t, "#defaults-w", "1")
		b.run(t, "clicking apply defaults", chromedp.Click(chromedp.CSS(`#defaults-apply`)))
		b.waitFor(t, "every node reports R=1 W=1", 10*time.Second, func() error {
			for _, a := range dev.nodeHTTP {
				var d struct{ N, R, W int }
				if err := getJSON("http://"+a+"/admin/defaults", &d); err != nil {
					return err
				}
				if d.R != 1 || d.W != 1 {
					return fmt.Errorf("%s: %+v", a, d)
				}
			}
			return nil
		})
		// A preset runs the bench tool and the page draws its numbers.
		b.setField(t, "#preset-name", "write-only")
		b.run(t, "clicking run preset", chromedp.Click(chromedp.CSS(`#preset-run`)))
		b.waitFor(t, "the write-only preset finishes with a results row and a histogram", 30*time.Second, func() error {
			var st struct {
				State  string `json:"state"`
				Text   string `json:"text"`
				Rows   int    `json:"rows"`
				Bars   int    `json:"bars"`
				Runs   int    `json:"runs"`
				Errors string `json:"errors"`
			}
			if err := b.evalErr(`(() => { const p = document.querySelector('#preset-progress');
				return { state: p.dataset.state || '', text: p.textContent,
					rows: document.querySelectorAll('#preset-results tbody tr[data-op="put"]').length,
					bars: document.querySelectorAll('#preset-charts figure[data-op="put"] rect.bar').length,
					runs: document.querySelectorAll('#preset-history tbody tr').length,
					errors: document.querySelector('#errors').innerText } })()`, &st); err != nil {
				return err
			}
			if st.State == "failed" {
				t.Fatalf("the preset failed: %s (errors shown: %q)", st.Text, st.Errors)
			}
			if st.State != "done" || st.Rows != 1 || st.Bars == 0 || st.Runs == 0 {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
		var quorum string
		b.eval(t, `document.querySelector('#preset-history tbody tr td:nth-child(3)').textContent`, &quorum)
		if quorum != "N3R1W1" {
			t.Errorf("the run is listed with quorums %q, want N3R1W1", quorum)
		}
		b.setField(t, "#defaults-r", "2")
		b.setField(t, "#defaults-w", "2")
		b.run(t, "restoring defaults", chromedp.Click(chromedp.CSS(`#defaults-apply`)))
	})

	t.Run("ring_highlights_key", func(t *testing.T) {
		b.show(t, "view-ring")
		b.setField(t, "#ring-key", hintKey)
		b.waitFor(t, "the ring marks the key's replicas and the legend names replicas and fallbacks", 10*time.Second, func() error {
			var got struct {
				Pref   int               `json:"pref"`
				Key    int               `json:"key"`
				Roles  map[string]string `json:"roles"`
				Marker bool              `json:"marker"`
			}
			if err := b.evalErr(`(() => { const roles = {};
				document.querySelectorAll('#ring-legend li[data-node]').forEach(li => { roles[li.dataset.node] = (li.querySelector('.role')||{}).textContent || '' });
				return { pref: document.querySelectorAll('#ring path.partition.pref').length,
					key: document.querySelectorAll('#ring path.partition.key').length,
					marker: !document.querySelector('#key-marker').classList.contains('hidden'), roles } })()`, &got); err != nil {
				return err
			}
			if got.Pref != len(place.PreferenceList) || got.Key != 1 || !got.Marker {
				return fmt.Errorf("%d partitions marked as preference list, %d as the key's, marker %v", got.Pref, got.Key, got.Marker)
			}
			for i, id := range place.PreferenceList {
				if want := fmt.Sprintf("replica %d", i+1); got.Roles[id] != want {
					return fmt.Errorf("legend role of %s is %q, want %q (all: %v)", id, got.Roles[id], want, got.Roles)
				}
			}
			for i, id := range place.Fallbacks {
				if want := fmt.Sprintf("fallback %d", i+1); got.Roles[id] != want {
					return fmt.Errorf("legend role of %s is %q, want %q (all: %v)", id, got.Roles[id], want, got.Roles)
				}
			}
			return nil
		})
	})

	t.Run("network_cut_and_heal", func(t *testing.T) {
		b.show(t, "view-nodes")
		b.setField(t, "#cut-node", "n1")
		b.eval(t, `(() => { const c = document.querySelector('#cut-others input[value="n2"]');
			if (!c) throw new Error('no n2 checkbox in #cut-others'); c.checked = true; return true })()`, nil)
		cuts := func(addr string) ([]string, error) {
			var f struct {
				Rules struct {
					Cut []string `json:"cut"`
				} `json:"rules"`
			}
			err := getJSON("http://"+addr+"/admin/faults", &f)
			return f.Rules.Cut, err
		}
		b.run(t, "clicking cut links", chromedp.Click(chromedp.CSS(`#cut-apply`)))
		b.waitFor(t, "n1 and n2 cut both ways, n3 untouched", 10*time.Second, func() error {
			c1, err1 := cuts(dev.nodeHTTP[0])
			c2, err2 := cuts(dev.nodeHTTP[1])
			c3, err3 := cuts(dev.nodeHTTP[2])
			if err := errors.Join(err1, err2, err3); err != nil {
				return err
			}
			if !slices.Equal(c1, []string{"n2"}) || !slices.Equal(c2, []string{"n1"}) || len(c3) != 0 {
				return fmt.Errorf("cuts: n1 %v, n2 %v, n3 %v", c1, c2, c3)
			}
			return nil
		})
		b.run(t, "clicking heal links", chromedp.Click(chromedp.CSS(`#cut-heal`)))
		b.waitFor(t, "n1 and n2 healed", 10*time.Second, func() error {
			c1, err1 := cuts(dev.nodeHTTP[0])
			c2, err2 := cuts(dev.nodeHTTP[1])
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			if len(c1) != 0 || len(c2) != 0 {
				return fmt.Errorf("cuts left: n1 %v, n2 %v", c1, c2)
			}
			return nil
		})

		// n1 cut off from everyone: the others soon call it dead, yet
		// the gossip matrix keeps n1's own row, seeing them all dead, so
		// both sides of the partition show.
		b.show(t, "view-nodes")
		b.setField(t, "#cut-node", "n1")
		b.eval(t, `(() => { document.querySelectorAll('#cut-others input').forEach((c) => { c.checked = true }); return true })()`, nil)
		b.run(t, "cutting n1 off from every node", chromedp.Click(chromedp.CSS(`#cut-apply`)))
		b.show(t, "view-gossip")
		row := func(obs string) (map[string]string, error) {
			var cells map[string]string
			err := b.evalErr(`(() => { const r = document.querySelector('#gossip tr[data-node="`+obs+`"]'); if (!r) return null;
				const ids = [...document.querySelectorAll('#gossip thead th')].slice(1, -1).map((th) => th.textContent);
				const out = {}; [...r.querySelectorAll('td')].slice(0, ids.length).forEach((td, i) => { out[ids[i]] = td.className }); return out })()`, &cells)
			return cells, err
		}
		b.waitFor(t, "the matrix shows n1 seeing every node dead, and n2 seeing n1 dead", 30*time.Second, func() error {
			n1, err := row("n1")
			if err != nil || n1 == nil {
				return fmt.Errorf("no row for n1 (%v)", err)
			}
			for id, cls := range n1 {
				if id != "n1" && cls != "st-dead" {
					return fmt.Errorf("n1 sees %s as %s", id, cls)
				}
			}
			n2, err := row("n2")
			if err != nil || n2 == nil || n2["n1"] != "st-dead" {
				return fmt.Errorf("n2's row %v (%v)", n2, err)
			}
			return nil
		})
		b.show(t, "view-nodes")
		b.run(t, "healing n1", chromedp.Click(chromedp.CSS(`#cut-heal`)))
		b.waitFor(t, "n1 alive again for every node", 30*time.Second, func() error {
			for i := range dev.nodeHTTP {
				if err := b.nodeStatusIs(fmt.Sprintf("n%d", i+1), "alive"); err != nil {
					return err
				}
			}
			return nil
		})
	})

	t.Run("screenshots", func(t *testing.T) {
		if os.Getenv("DYNAGO_SCREENSHOTS") != "1" && !*update {
			t.Skip("set DYNAGO_SCREENSHOTS=1 (or -update) to write docs/screenshots/*.png")
		}
		dir := filepath.Join(root, "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Give the pictures something to show: a highlighted key on the
		// ring, and the history of the key the earlier steps wrote.
		b.show(t, "view-ring")
		b.setField(t, "#ring-key", hintKey)
		b.show(t, "view-history")
		b.setField(t, "#history-key", hintKey)
		b.run(t, "showing the key's history", chromedp.Click(chromedp.CSS(`#history-send`)))
		// The tab bar is sticky; in an element screenshot it would cover
		// the top of the section, so the pictures are taken without that.
		b.eval(t, `(() => { const n = document.querySelector('nav.tabs'); if (n) n.style.position = 'static'; return true })()`, nil)
		for _, v := range views {
			b.show(t, v.section)
			// Let live data (SSE, periodic polls) fill the view.
			time.Sleep(1500 * time.Millisecond)
			png := b.screenshot(t, v.section)
			if err := os.WriteFile(filepath.Join(dir, v.file+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Last, since it navigates away: the same page served by one node
	// (dynago server --dashboard) watches the whole cluster through it,
	// and offers no process control.
	t.Run("served_by_a_node", func(t *testing.T) {
		b.run(t, "opening a node's dashboard", chromedp.Navigate("http://"+dev.nodeHTTP[1]+"/dashboard/"))
		b.waitFor(t, "connected, every node listed, process controls hidden", 20*time.Second, func() error {
			var got struct {
				Status  string   `json:"status"`
				Mode    string   `json:"mode"`
				IDs     []string `json:"ids"`
				Control bool     `json:"control"`
			}
			if err := b.evalErr(`({status: (document.querySelector('#status')||{}).textContent||'',
				mode: (document.querySelector('#mode')||{}).textContent||'',
				ids: [...document.querySelectorAll('#nodes tr[data-node]')].map(r => r.dataset.node),
				control: [...document.querySelectorAll('#nodes button.kill')].some(b => b.offsetParent !== null)})`, &got); err != nil {
				return err
			}
			if got.Status != "connected" || !strings.Contains(got.Mode, "n2") || len(got.IDs) != 5 || got.Control {
				return fmt.Errorf("%+v", got)
			}
			return nil
		})
	})
	t.Logf("browser test took %v in all (build included)", time.Since(began).Round(time.Millisecond))
}

func containsValue(vals []string, v string) bool {
	return slices.ContainsFunc(vals, func(s string) bool { return strings.TrimSpace(s) == v })
}

// console sends one request through the page's console (op put, get or
// delete; w empty keeps the page's default) and waits until the page shows
// its answer, returning #console-result's status text.
func (b *browser) console(t *testing.T, op, key, value, w string) string {
	t.Helper()
	b.show(t, "view-console")
	b.setField(t, "#console-op", op)
	b.setField(t, "#console-key", key)
	if op == "put" {
		b.setField(t, "#console-value", value)
	}
	if w != "" {
		b.setField(t, "#console-w", w)
	}
	// Markers inside #console-result and #console-local: the page
	// replaces both when the answer arrives (the result first, then every
	// node's copy), which removes the markers.
	b.eval(t, `(() => { const r = document.querySelector('#console-result');
		if (!r) throw new Error('no #console-result');
		const m = document.createElement('span'); m.id = 'browser-test-pending'; m.hidden = true; r.appendChild(m);
		const l = document.querySelector('#console-local tbody') || document.querySelector('#console-local');
		if (!l) throw new Error('no #console-local');
		const ml = document.createElement('tr'); ml.id = 'browser-test-local-pending'; ml.hidden = true; l.appendChild(ml);
		return true })()`, nil)
	b.run(t, "clicking #console-send", chromedp.Click(chromedp.CSS(`#console-send`)))
	var res string
	b.waitFor(t, op+" "+key+" answered in #console-result and #console-local", stepTimeout, func() error {
		var pending bool
		if err := b.evalErr(`!!(document.querySelector('#browser-test-pending') || document.querySelector('#browser-test-local-pending'))`, &pending); err != nil {
			return err
		}
		if pending {
			return errPending
		}
		return b.evalErr(`document.querySelector('#console-result').innerText`, &res)
	})
	return res
}

// setField sets an input's or select's value the way typing or choosing
// does, firing input and change so the page's listeners see it.
func (b *browser) setField(t *testing.T, sel, v string) {
	t.Helper()
	b.eval(t, fmt.Sprintf(`(() => { const e = document.querySelector(%s);
		if (!e) throw new Error('no element ' + %s);
		e.value = %s;
		e.dispatchEvent(new Event('input', {bubbles: true}));
		e.dispatchEvent(new Event('change', {bubbles: true}));
		return true })()`, jsString(sel), jsString(sel), jsString(v)), nil)
}

// show brings a section of the page into view the way a user would: by
// clicking its tab (the nav link to the section).
func (b *browser) show(t *testing.T, section string) {
	t.Helper()
	b.run(t, "opening tab "+section, chromedp.Click(chromedp.CSS(`nav a[href="#`+section+`"]`)))
}

// nodeStatusIs checks the nodes table's status cell of id.
func (b *browser) nodeStatusIs(id, want string) error {
	var s string
	if err := b.evalErr(fmt.Sprintf(`((document.querySelector('#nodes tr[data-node=%s] td.status')||{}).textContent||'').trim()`, jsString(id)), &s); err != nil {
		return err
	}
	if !strings.EqualFold(s, want) {
		return fmt.Errorf("td.status of %s is %q", id, s)
	}
	return nil
}

// hintHolders lists the nodes whose #console-local row names id in its
// hints cell.
func (b *browser) hintHolders(id string) ([]string, error) {
	var rows []struct {
		Node  string `json:"node"`
		Hints string `json:"hints"`
	}
	if err := b.evalErr(`[...document.querySelectorAll('#console-local tr[data-node]')].map(r => ({node: r.dataset.node, hints: (r.querySelector('td.hints')||{}).textContent||''}))`, &rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errors.New("#console-local has no node rows")
	}
	var holders []string
	for _, r := range rows {
		if slices.Contains(strings.FieldsFunc(r.Hints, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\t' }), id) {
			holders = append(holders, r.Node)
		}
	}
	return holders, nil
}

// siblings returns the value text of each li.sibling in #console-result,
// without its button's label.
func (b *browser) siblings() ([]string, error) {
	var vals []string
	err := b.evalErr(`[...document.querySelectorAll('#console-result li.sibling')].map(li => {
		const c = li.cloneNode(true); c.querySelectorAll('button').forEach(x => x.remove());
		const v = c.querySelector('.value, code, pre'); return (v || c).textContent.trim() })`, &vals)
	return vals, err
}

// screenshot captures one section of the page as PNG.
func (b *browser) screenshot(t *testing.T, section string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID(section)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", section, err)
	}
	return png
}

// TestBrowserDashboardLarge checks the page stays usable at the size the
// spec names, 16 nodes and 1,024 partitions, and writes screenshots of
// it. Sixteen processes are a lot for a 2-core CI machine, so it runs on
// request: DYNAGO_BROWSER_LARGE=1.
func TestBrowserDashboardLarge(t *testing.T) {
	if os.Getenv("DYNAGO_BROWSER_LARGE") != "1" {
		t.Skip("set DYNAGO_BROWSER_LARGE=1 to run the 16-node, 1,024-partition dashboard check")
	}
	exe := requireChromium(t)
	root := moduleRoot(t)
	bin := buildDynago(t, root)
	dev := startDev(t, bin, 16, "--partitions", "1024")
	b := newBrowser(t, t.Context(), exe)
	b.run(t, "opening the dashboard", chromedp.Navigate(dev.dashboard))
	b.waitFor(t, "16 node rows and a 1,024-partition ring", 60*time.Second, func() error {
		var got struct{ Rows, Paths, Legend int }
		if err := b.evalErr(`({rows: document.querySelectorAll('#nodes tr[data-node]').length,
			paths: document.querySelectorAll('#ring path.partition').length,
			legend: document.querySelectorAll('#ring-legend li').length})`, &got); err != nil {
			return err
		}
		if got.Rows != 16 || got.Paths != 1024 || got.Legend != 16 {
			return fmt.Errorf("%+v", got)
		}
		return nil
	})
	// Every owner has its own colour.
	var colours []string
	b.eval(t, `[...new Set([...document.querySelectorAll('#ring path.partition')].map(p => p.getAttribute('fill')))]`, &colours)
	if len(colours) != 16 {
		t.Errorf("16 owners drawn in %d distinct colours: %v", len(colours), colours)
	}
	b.setField(t, "#ring-key", "greeting")
	b.waitFor(t, "the key marker shows", 10*time.Second, func() error {
		var hidden bool
		if err := b.evalErr(`document.querySelector('#key-marker').classList.contains('hidden')`, &hidden); err != nil {
			return err
		}
		if hidden {
			return errPending
		}
		return nil
	})
	if os.Getenv("DYNAGO_SCREENSHOTS") == "1" || *update {
		b.eval(t, `(() => { const n = document.querySelector('nav.tabs'); if (n) n.style.position = 'static'; return true })()`, nil)
		time.Sleep(3 * time.Second)
		for _, v := range []struct{ file, section string }{{"ring-16-nodes", "view-ring"}, {"nodes-16-nodes", "view-nodes"}, {"gossip-16-nodes", "view-gossip"}} {
			b.show(t, v.section)
			png := b.screenshot(t, v.section)
			if err := os.WriteFile(filepath.Join(root, "docs", "screenshots", v.file+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
