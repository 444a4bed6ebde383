package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The nemesis's fault kinds, as named by --nemesis.
const (
	// Kill sends SIGKILL to a node and starts it again on its data 1–4 s
	// later.
	Kill = "kill"
	// Pause freezes a node (SIGSTOP) for 1–4 s, then continues it.
	Pause = "pause"
	// Partition cuts the cluster in two (one node alone, or a minority
	// against a majority) for 2–5 s: about as long as it takes the
	// failure detector to declare the other side dead, well inside the
	// time it keeps gossiping to the dead.
	Partition = "partition"
	// LongPartition is a partition that lasts DeadTimeout plus 2–5 s, so
	// the failure detector has given the other side up when it heals.
	LongPartition = "long-partition"
	// Wipe kills a node, deletes its data directory and starts it empty
	// (see the wipe rule in Config.Nemesis).
	Wipe = "wipe"
)

// AllNemeses lists every fault kind, in the order of --nemesis's default.
var AllNemeses = []string{Kill, Pause, Partition, LongPartition, Wipe}

// Defaults of Config.
const (
	DefaultDuration = 90 * time.Second
	DefaultClients  = 8
	DefaultKeys     = 5
	// DefaultDeadTimeout fits the lab preset: memberlist declares a silent
	// node dead in about 2 s and gossips to the dead for 15 s more
	// (GossipToTheDeadTime); past that, only a re-join brings it back.
	DefaultDeadTimeout = 17 * time.Second
	// DefaultConvergeTimeout is the bound: convergence within 30 s
	// of the final heal.
	DefaultConvergeTimeout = 30 * time.Second
	// DefaultRequestTimeout is the coordination timeout each request asks
	// for; the client gives up one second after it (a paused node never
	// answers). Short, so that a client stuck on a dead node soon moves on.
	DefaultRequestTimeout = 2 * time.Second
	// DefaultProgressEvery spaces the progress lines.
	DefaultProgressEvery = 5 * time.Second
)

// Config is one chaos run. Zero fields take the defaults above.
type Config struct {
	// Duration is how long clients add elements while the nemesis acts;
	// healing and convergence come after it.
	Duration time.Duration
	// Clients is the number of concurrent clients, each doing one
	// read-modify-write at a time through a random node.
	Clients int
	// Keys is the number of keys (sets) the clients add to. Few keys mean
	// many concurrent read-modify-writes of the same key: siblings.
	Keys int
	// Seed seeds every random choice of the clients and the nemesis (which
	// key, which node, which fault, for how long). The timing of a real
	// cluster is not reproducible, so a seed replays the choices, not the
	// run. 0 is a valid seed.
	Seed uint64
	// Nemesis lists the fault kinds to mix (see AllNemeses); nil means
	// all of them, an empty non-nil slice none (a fault-free run).
	//
	// The wipe rule: wiping a node destroys its copies, and with W of N an
	// acknowledged element may be on only W nodes, so two wipes before
	// repair could destroy every copy of it and the checker would blame
	// the database for what the nemesis did. So a node is wiped only when
	// every element acknowledged before the check is held by every primary
	// replica of its key (read through /admin/local); otherwise the wipe
	// waits, and is skipped after 10 s. A wipe thus destroys at most one
	// copy of anything not yet fully replicated, and W ≥ 2 leaves another.
	Nemesis []string
	// DeadTimeout is how long a cut-off node takes to be declared dead and
	// given up on by the cluster's failure detector; long partitions last
	// DeadTimeout plus 2–5 s.
	DeadTimeout time.Duration
	// ConvergeTimeout bounds the wait, after the final heal, for every
	// node to see every other alive and to return the same set for every
	// key.
	ConvergeTimeout time.Duration
	// RequestTimeout is the coordination timeout asked of the node for
	// each read and write.
	RequestTimeout time.Duration
	// LWW says the cluster runs last-write-wins; it is only reported.
	LWW bool
	// Log receives progress lines (one every ProgressEvery, and one per
	// fault); nil discards them.
	Log           func(format string, args ...any)
	ProgressEvery time.Duration
}

func (c *Config) validate() error {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.Nemesis == nil {
		c.Nemesis = slices.Clone(AllNemeses)
	}
	if c.DeadTimeout == 0 {
		c.DeadTimeout = DefaultDeadTimeout
	}
	if c.ConvergeTimeout == 0 {
		c.ConvergeTimeout = DefaultConvergeTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	switch {
	case c.Duration < 0 || c.DeadTimeout < 0 || c.ConvergeTimeout < 0 || c.RequestTimeout < 0 || c.ProgressEvery < 0:
		return fmt.Errorf("chaos: durations must be positive")
	case c.Clients < 1 || c.Clients > 1000:
		return fmt.Errorf("chaos: clients must be 1..1000, not %d", c.Clients)
	case c.Keys < 1 || c.Keys > 1000:
		return fmt.Errorf("chaos: keys must be 1..1000, not %d", c.Keys)
	}
	for _, k := range c.Nemesis {
		if !slices.Contains(AllNemeses, k) {
			return fmt.Errorf("chaos: unknown nemesis %q (want some of %s)", k, strings.Join(AllNemeses, ","))
		}
	}
	return nil
}

// ParseNemesis parses a comma-separated list of fault kinds; "all" is
// every kind and "none" (or "") no fault at all.
func ParseNemesis(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "all":
		return slices.Clone(AllNemeses), nil
	case "", "none":
		return []string{}, nil
	}
	out := []string{}
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(AllNemeses, k) {
			return nil, fmt.Errorf("unknown nemesis %q (want some of %s, or all, or none)", k, strings.Join(AllNemeses, ","))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Report is the outcome of a run; its JSON form is the last line of
// `dynago chaos`.
type Report struct {
	Seed    uint64 `json:"seed"`
	LWW     bool   `json:"lww"`
	Nodes   int    `json:"nodes"`
	Clients int    `json:"clients"`
	Keys    int    `json:"keys"`
	// DurationS is how long the workload ran, in seconds.
	DurationS float64 `json:"duration_s"`

	// Attempted counts the elements whose PUT was sent.
	Attempted int `json:"attempted"`
	// Acked counts the elements whose PUT answered 2xx.
	Acked int `json:"acked"`
	// Indeterminate counts the elements whose PUT failed or timed out:
	// they may or may not be present, and count neither as lost nor as
	// unexpected.
	Indeterminate int `json:"indeterminate"`
	// Lost counts acknowledged elements missing from the final read.
	Lost int `json:"lost"`
	// Unexpected counts elements in the final read that no client ever
	// attempted (or that are not elements at all).
	Unexpected int `json:"unexpected"`

	// Reads counts the GETs of the read-modify-writes; ReadsOK those that
	// answered (200, or 404 for a key still empty).
	Reads   int `json:"reads"`
	ReadsOK int `json:"reads_ok"`
	// NotFoundReads counts GETs that answered 404 for a key which already
	// had an acknowledged element when the GET was sent: reads that lie.
	// The client then writes without a context, which keeps the stored
	// set as a sibling rather than losing it (except under LWW).
	NotFoundReads int `json:"not_found_reads"`
	// ReadAvailability is ReadsOK/Reads; WriteAvailability is
	// Acked/Attempted.
	ReadAvailability  float64 `json:"read_availability"`
	WriteAvailability float64 `json:"write_availability"`
	// ReadErrors and WriteErrors count the failed requests by kind:
	// quorum_failed, an HTTP status and API code (503_unavailable),
	// timeout (no answer in RequestTimeout + 1 s), refused (a killed
	// node), reset (a connection cut mid-request: a node killed while
	// answering), net_dial, other.
	ReadErrors  map[string]int `json:"read_errors,omitempty"`
	WriteErrors map[string]int `json:"write_errors,omitempty"`

	// Converged says every node saw every other alive and returned the
	// same set for every key (read with R=N), equal to every primary's own
	// copy, within ConvergeTimeout of the final heal. ConvergenceS is the
	// time that took, or the timeout when it did not happen.
	Converged    bool    `json:"converged"`
	ConvergenceS float64 `json:"convergence_s"`
	// Unconverged says what still differed when the wait ran out.
	Unconverged string `json:"unconverged,omitempty"`
	// HealError is the final heal's error, if any: a node that could not
	// be started or reached, or one that had crashed by itself.
	HealError string `json:"heal_error,omitempty"`

	// Nemesis counts the faults performed per kind; NemesisSkipped those
	// the nemesis chose but did not perform (wipe rule not met,
	// unsupported by the cluster);
	// NemesisErrors the fault actions that failed.
	Nemesis        map[string]int `json:"nemesis"`
	NemesisSkipped map[string]int `json:"nemesis_skipped,omitempty"`
	NemesisErrors  int            `json:"nemesis_errors"`

	// LostElements and UnexpectedElements are samples (at most 20 each).
	LostElements       []string `json:"lost_elements,omitempty"`
	UnexpectedElements []string `json:"unexpected_elements,omitempty"`

	// Valid is the verdict: healed and converged, nothing lost, nothing
	// unexpected.
	Valid bool `json:"valid"`
}

// maxSample bounds the element samples of a Report.
const maxSample = 20
