package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// Observer is implemented by backends that can be watched: a live event
// stream (/events), a statistics snapshot (/admin/stats) and the causal
// history of one key (/admin/history/{key}). The dashboard is built on it.
type Observer interface {
	// Subscribe returns the retained events newer than since (at most the
	// replay window, oldest first) and a channel of the events published
	// after them, with no gap between the two. The channel is buffered; a
	// subscriber that falls behind loses events rather than slowing the
	// node. It is closed when the backend shuts down. cancel releases the
	// subscription; it may be called more than once.
	Subscribe(since uint64) (replay []Event, events <-chan Event, cancel func())
	// Events returns every retained event newer than since, oldest first.
	Events(since uint64) []Event
	// Stats returns this node's statistics; Handoff is filled in by the
	// HTTP layer from Admin.Progress.
	Stats() Stats
	// History returns this node's copy of key with its causal detail. ok
	// is false when the node holds nothing for the key.
	History(key []byte) (h History, ok bool, err error)
}

// Event is one entry of a node's event log. Data is kind-specific (see
// docs/API.md) and must not change once published: it is encoded by every
// subscriber concurrently.
type Event struct {
	Seq  uint64      `json:"seq"`
	At   time.Time   `json:"at"` // encodes as RFC 3339 with nanoseconds
	Node ring.NodeID `json:"node"`
	Kind string      `json:"kind"`
	Msg  string      `json:"msg"`
	Data any         `json:"data"`
}

// Stats is the body of GET /admin/stats.
type Stats struct {
	Node         ring.NodeID         `json:"node"`
	RingVersion  uint64              `json:"ring_version"`
	Keys         int                 `json:"keys"` // approximate: see docs/API.md
	Hints        map[ring.NodeID]int `json:"hints"`
	HintBytes    int64               `json:"hint_bytes"`    // the hints' keys and values, against --max-hint-bytes
	HintsRefused uint64              `json:"hints_refused"` // since the process started
	AE           AEStats             `json:"ae"`
	Partitions   []PartitionStats    `json:"partitions"`
	Gossip       []GossipMember      `json:"gossip"`
	Handoff      *api.Handoff        `json:"handoff"`
	Events       EventStats          `json:"events"`
}

// AEStats are the anti-entropy counters of /admin/stats.
type AEStats struct {
	Exchanges    uint64 `json:"exchanges"`
	InSync       uint64 `json:"in_sync"`
	KeysRepaired uint64 `json:"keys_repaired"`
	TreeBuilds   uint64 `json:"tree_builds"`
}

// PartitionStats is one partition this node replicates.
type PartitionStats struct {
	Partition    int           `json:"partition"`
	Replicas     []ring.NodeID `json:"replicas"`      // its preference list
	LastExchange *Exchange     `json:"last_exchange"` // null until this node ran one
	// Pairs is anti-entropy with each other replica of the partition.
	Pairs []PairStats `json:"pairs"`
}

// PairStats is anti-entropy between this node and one other replica of a
// partition.
type PairStats struct {
	Peer ring.NodeID `json:"peer"`
	// LastExchange is the last exchange this node started with Peer; null
	// when it has not started one (Peer may have started some).
	LastExchange *Exchange `json:"last_exchange"`
	KeysSent     uint64    `json:"keys_sent"` // objects sent to Peer to repair or hand off this partition
}

// Exchange is the last anti-entropy exchange this node ran for a partition.
type Exchange struct {
	Peer   ring.NodeID `json:"peer"`
	At     time.Time   `json:"at"`
	InSync bool        `json:"in_sync"`
}

// GossipMember is one member as this node's gossip layer sees it.
type GossipMember struct {
	ID       ring.NodeID `json:"id"`
	Status   string      `json:"status"` // alive, suspect or dead
	Addr     string      `json:"addr"`   // gossip address
	HTTPAddr string      `json:"http_addr"`
}

// EventStats counts the event stream's own work.
type EventStats struct {
	Published   uint64 `json:"published"`
	Dropped     uint64 `json:"dropped"` // events slow subscribers lost
	Subscribers int    `json:"subscribers"`
	// RequestsSkipped counts requests not logged because the node was
	// already logging its maximum of request events per second.
	RequestsSkipped uint64 `json:"requests_skipped"`
}

// History is the body of GET /admin/history/{key}.
type History struct {
	Key       string           `json:"key"`
	Node      ring.NodeID      `json:"node"`
	Partition int              `json:"partition"`
	Clock     []Dot            `json:"clock"` // the version vector a read's context carries
	Siblings  []HistorySibling `json:"siblings"`
	Hints     []HistoryHint    `json:"hints"`
	// Held is false when the node holds neither a copy nor a hint. That is
	// an answer, not an error: the dashboard asks every node about a key,
	// and most hold nothing for it.
	Held bool `json:"held"`
}

// Dot names one write: the Counter-th write coordinated by Actor.
type Dot struct {
	Actor   string `json:"actor"`
	Counter uint64 `json:"counter"`
}

// HistorySibling is one sibling with the dot of the write that made it.
type HistorySibling struct {
	Value     []byte `json:"value"` // base64
	Deleted   bool   `json:"deleted"`
	Timestamp int64  `json:"timestamp"` // unix milliseconds at the coordinator
	Dot       Dot    `json:"dot"`
}

// HistoryHint is a hint this node holds for the key, for primary For.
type HistoryHint struct {
	For      ring.NodeID      `json:"for"`
	Clock    []Dot            `json:"clock"`
	Siblings []HistorySibling `json:"siblings"`
}

// ObjectHistory returns o's version vector and its siblings with their
// dots. A DVVSet entry {Actor, Counter, Values newest first} holds the
// values of dots Counter, Counter-1, ..., so value j has dot Counter-j.
func ObjectHistory(o object.Object) (clock []Dot, siblings []HistorySibling) {
	clock = []Dot{}
	for _, d := range o.Clock.Join() {
		clock = append(clock, Dot{Actor: d.Actor, Counter: d.Counter})
	}
	siblings = []HistorySibling{}
	for _, e := range o.Clock.Entries {
		for j, v := range e.Values {
			siblings = append(siblings, HistorySibling{
				Value: nonNil(v.Value), Deleted: v.Deleted, Timestamp: v.Timestamp,
				Dot: Dot{Actor: e.Actor, Counter: e.Counter - uint64(j)},
			})
		}
	}
	return clock, siblings
}

// DefaultEventHeartbeat is how often an idle event stream sends a comment
// line: often enough that proxies and load balancers with a one-minute
// idle timeout keep the stream open, rare enough to cost nothing.
const DefaultEventHeartbeat = 15 * time.Second

type eventsBody struct {
	Events []Event `json:"events"`
}

func (a *handler) observer(w http.ResponseWriter) (Observer, bool) {
	o, ok := a.b.(Observer)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node has no event log"})
	}
	return o, ok
}

// events serves GET /events: a Server-Sent Events stream, or with
// format=json one page of the retained events newer than since.
func (a *handler) events(w http.ResponseWriter, r *http.Request) {
	o, ok := a.observer(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	since, err := parseSeq(q.Get("since"))
	if err != nil {
		writeError(w, errBadParameter("since: "+err.Error()))
		return
	}
	switch f := q.Get("format"); f {
	case "json":
		writeJSON(w, http.StatusOK, eventsBody{Events: nonNil(o.Events(since))})
		return
	case "", "sse":
	default:
		writeError(w, errBadParameter(fmt.Sprintf("format must be json or sse, got %q", f)))
		return
	}
	// A reconnecting EventSource sends the last id it saw; it wins over
	// since, which only a first connection sets.
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if since, err = parseSeq(id); err != nil {
			writeError(w, errBadParameter("Last-Event-ID: "+err.Error()))
			return
		}
	}
	replay, ch, cancel := o.Subscribe(since)
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	for _, ev := range replay {
		if writeEvent(w, ev) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	heartbeat := time.NewTicker(a.opts.EventHeartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case ev, open := <-ch:
			if !open {
				return // the node is shutting down
			}
			err = writeEvent(w, ev)
		case <-heartbeat.C:
			_, err = fmt.Fprint(w, ": heartbeat\n\n")
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went away
		}
	}
}

// writeEvent writes one SSE frame. encoding/json never emits a raw
// newline, so the data fits one data: line.
func writeEvent(w http.ResponseWriter, ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		// A Data value that cannot be encoded is a bug in the publisher;
		// the stream carries on without it.
		return nil
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, data)
	return err
}

func parseSeq(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func (a *handler) stats(w http.ResponseWriter, _ *http.Request) {
	o, ok := a.observer(w)
	if !ok {
		return
	}
	st := o.Stats()
	st.Hints = nonNilMap(st.Hints)
	st.Partitions = nonNil(st.Partitions)
	st.Gossip = nonNil(st.Gossip)
	if st.Handoff == nil {
		st.Handoff, _ = a.handoff()
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *handler) history(w http.ResponseWriter, r *http.Request) {
	o, ok := a.observer(w)
	if !ok {
		return
	}
	key, e := a.key(r)
	if e != nil {
		writeError(w, e)
		return
	}
	h, ok, err := o.History(key)
	if err != nil {
		a.opts.Logger.Error("httpapi: reading key history", "key", string(key), "err", err)
		writeError(w, &apiError{http.StatusInternalServerError, CodeInternal, "reading the local copy: " + err.Error()})
		return
	}
	h.Key, h.Held = string(key), ok
	h.Clock = nonNil(h.Clock)
	h.Siblings = nonNil(h.Siblings)
	h.Hints = nonNil(h.Hints)
	writeJSON(w, http.StatusOK, h)
}

func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
