package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dynago/dynago/client"
)

// Run runs the set workload and the nemesis against c for cfg.Duration,
// heals everything, waits for convergence, reads every set back and
// checks it against what the clients were told. The error is for a run
// that could not be carried out (bad config, cluster unreachable at the
// start, ctx ended); a run that lost data returns a Report with Valid
// false and a nil error.
func Run(ctx context.Context, c Cluster, cfg Config) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	nodes := c.Nodes()
	if len(nodes) == 0 {
		return Report{}, errors.New("chaos: the cluster has no nodes")
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	n, err := replicas(ctx, c, hc)
	if err != nil {
		return Report{}, err
	}
	hist := newHistory(cfg.Keys)
	w, err := newWorkload(&cfg, c, hc, hist)
	if err != nil {
		return Report{}, err
	}
	nem := newNemesis(&cfg, c, hc, hist)

	start := time.Now()
	end := start.Add(cfg.Duration)
	var clients, faults sync.WaitGroup
	for i := range cfg.Clients {
		clients.Go(func() { w.run(ctx, i) })
	}
	faults.Go(func() { nem.run(ctx, end) })

	progress := time.NewTicker(cfg.ProgressEvery)
	for wait := true; wait; {
		select {
		case <-progress.C:
			att, ack, unk := hist.counts()
			hist.mu.Lock()
			errs := fmt.Sprint(hist.readErrs)
			hist.mu.Unlock()
			cfg.Log("t=%3.0fs attempted=%d acked=%d indeterminate=%d reads=%d/%d not_found=%d read_errors=%s fault=%s",
				time.Since(start).Seconds(), att, ack, unk, hist.readsOK.Load(), hist.reads.Load(), hist.notFound.Load(), strings.TrimPrefix(errs, "map"), nem.status())
		case <-time.After(time.Until(end)):
			wait = false
		case <-ctx.Done():
			wait = false
		}
	}
	progress.Stop()
	close(w.stop)
	faults.Wait()
	clients.Wait()
	ran := time.Since(start)

	// Heal on a fresh context: even an interrupted run leaves the cluster
	// whole.
	cfg.Log("healing every fault, then waiting up to %v for convergence", cfg.ConvergeTimeout)
	hctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	healErr := c.Heal(hctx)
	cancel()
	if healErr != nil {
		cfg.Log("heal: %v", healErr)
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	healed := time.Now()
	conv := converge(ctx, c, hc, &cfg, n)
	if ctx.Err() != nil {
		return Report{}, ctx.Err()
	}

	rep := Report{
		Seed: cfg.Seed, LWW: cfg.LWW, Nodes: len(nodes), Clients: cfg.Clients, Keys: cfg.Keys,
		DurationS:     round(ran.Seconds()),
		Reads:         int(hist.reads.Load()),
		ReadsOK:       int(hist.readsOK.Load()),
		NotFoundReads: int(hist.notFound.Load()),
		Converged:     conv.ok,
		Unconverged:   conv.reason,
	}
	if conv.ok {
		rep.ConvergenceS = round(conv.at.Sub(healed).Seconds())
	} else {
		rep.ConvergenceS = round(cfg.ConvergeTimeout.Seconds())
	}
	if healErr != nil {
		rep.HealError = healErr.Error()
	}
	nem.mu.Lock()
	rep.Nemesis, rep.NemesisSkipped, rep.NemesisErrors = maps.Clone(nem.done), maps.Clone(nem.skipped), nem.errs
	nem.mu.Unlock()
	hist.mu.Lock()
	rep.Attempted, rep.Acked, rep.Indeterminate = len(hist.attempted), len(hist.acked), hist.unknown
	rep.ReadErrors, rep.WriteErrors = maps.Clone(hist.readErrs), maps.Clone(hist.writeErrs)
	rep.LostElements, rep.UnexpectedElements = check(hist.attempted, hist.acked, conv.final)
	hist.mu.Unlock()
	rep.Lost, rep.Unexpected = len(rep.LostElements), len(rep.UnexpectedElements)
	if len(rep.LostElements) > maxSample {
		rep.LostElements = rep.LostElements[:maxSample]
	}
	if len(rep.UnexpectedElements) > maxSample {
		rep.UnexpectedElements = rep.UnexpectedElements[:maxSample]
	}
	rep.ReadAvailability = ratio(rep.ReadsOK, rep.Reads)
	rep.WriteAvailability = ratio(rep.Acked, rep.Attempted)
	rep.Valid = rep.Converged && rep.Lost == 0 && rep.Unexpected == 0 && rep.HealError == ""
	return rep, nil
}

// check compares the final sets with the history: lost are acknowledged
// elements missing from their key's final set, unexpected are elements in
// a final set that no client attempted on that key. Both come sorted.
func check(attempted map[string]int, acked []ackedElem, final []set) (lost, unexpected []string) {
	for _, a := range acked {
		if _, ok := final[a.key][a.elem]; !ok {
			lost = append(lost, keyName(a.key)+"/"+a.elem)
		}
	}
	for k, s := range final {
		for e := range s {
			if key, ok := attempted[e]; !ok || key != k {
				unexpected = append(unexpected, keyName(k)+"/"+e)
			}
		}
	}
	slices.Sort(lost)
	slices.Sort(unexpected)
	return lost, unexpected
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return round(float64(a) / float64(b))
}

func round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// replicas asks the first node that answers for N.
func replicas(ctx context.Context, c Cluster, hc *http.Client) (int, error) {
	var errs []error
	for _, id := range c.Nodes() {
		cv, err := getCluster(ctx, hc, c.HTTPAddr(id))
		if err == nil && cv.N > 0 {
			return cv.N, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v", id, err))
	}
	return 0, fmt.Errorf("chaos: no node answered /cluster: %w", errors.Join(errs...))
}

// convergence is the outcome of converge.
type convergence struct {
	ok     bool
	at     time.Time
	reason string // what differed at the last look, when !ok
	final  []set  // per key: the agreed set, or when !ok the union of everything read
}

// converge polls until every node sees every other alive and, for every
// key, every node answers the same set to a read with R=N and every
// primary's own copy is that set; or until cfg.ConvergeTimeout. R=N reads
// are what makes a Dynamo client see everything, and they trigger read
// repair as a client's reads would.
func converge(ctx context.Context, c Cluster, hc *http.Client, cfg *Config, n int) convergence {
	deadline := time.Now().Add(cfg.ConvergeTimeout)
	nodes := c.Nodes()
	clients := map[string]*client.Client{}
	for _, id := range nodes {
		cl, err := client.New([]string{c.HTTPAddr(id)}, client.WithHTTPClient(hc), client.WithTimeout(3*time.Second))
		if err != nil {
			return convergence{reason: err.Error(), final: make([]set, cfg.Keys)}
		}
		clients[id] = cl
	}
	prefs := map[string][]string{}
	var last convergence
	for attempt := 0; ; attempt++ {
		last = lookOnce(ctx, c, hc, clients, prefs, cfg.Keys, n)
		if last.ok {
			last.at = time.Now()
			return last
		}
		if attempt%8 == 0 {
			cfg.Log("not converged yet: %s", last.reason)
		}
		if time.Now().After(deadline) || !sleep(ctx, 250*time.Millisecond, deadline) {
			return last
		}
	}
}

// lookOnce reads everything once; see converge.
func lookOnce(ctx context.Context, c Cluster, hc *http.Client, clients map[string]*client.Client, prefs map[string][]string, keys, n int) convergence {
	nodes := c.Nodes()
	out := convergence{ok: true, final: make([]set, keys)}
	unions := make([]set, keys)
	var reasons []string
	differ := func(format string, args ...any) {
		out.ok = false
		if len(reasons) < 3 {
			reasons = append(reasons, fmt.Sprintf(format, args...))
		}
	}
	for _, id := range nodes {
		cv, err := getCluster(ctx, hc, c.HTTPAddr(id))
		if err != nil {
			differ("%s: %v", id, err)
			continue
		}
		listed := map[string]bool{}
		for _, m := range cv.Nodes {
			listed[m.ID] = true
			if m.Status != "alive" {
				differ("%s sees %s %s", id, m.ID, m.Status)
			}
		}
		for _, o := range nodes {
			if !listed[o] {
				differ("%s does not list %s", id, o)
			}
		}
	}
	for k := range keys {
		key := keyName(k)
		union := set{}
		var agreed set
		agreedAt := ""
		for _, id := range nodes {
			v, err := clients[id].Get(ctx, key, &client.GetOptions{R: n, Timeout: 2 * time.Second})
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				differ("%s: read %s with R=%d: %v", id, key, n, err)
				continue
			}
			s := set{}
			s.addSiblings(v.Siblings)
			maps.Copy(union, s)
			if agreed == nil {
				agreed, agreedAt = s, id
			} else if !agreed.equal(s) {
				differ("%s: %d elements read through %s, %d through %s", key, len(s), id, len(agreed), agreedAt)
			}
		}
		if _, ok := prefs[key]; !ok {
			for _, id := range nodes {
				if p, err := preferenceList(ctx, hc, c.HTTPAddr(id), key); err == nil {
					prefs[key] = p
					break
				}
			}
		}
		if len(prefs[key]) == 0 {
			differ("%s: no node answered its placement", key)
		}
		for _, id := range prefs[key] {
			s, err := localSet(ctx, hc, c.HTTPAddr(id), key)
			if err != nil {
				differ("%s: own copy at %s: %v", key, id, err)
				continue
			}
			maps.Copy(union, s)
			if agreed != nil && !agreed.equal(s) {
				differ("%s: replica %s holds %d elements, reads give %d", key, id, len(s), len(agreed))
			}
		}
		out.final[k], unions[k] = agreed, union
	}
	if !out.ok {
		// Not converged: judge by everything seen anywhere, so that
		// "lost" means gone from every node looked at.
		out.final = unions
	}
	out.reason = strings.Join(reasons, "; ")
	return out
}
