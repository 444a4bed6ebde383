package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The page could open one EventSource per node through the proxy, but
// browsers allow only six HTTP/1.1 connections per host: with six nodes
// the streams would take them all and every other request of the page
// would hang. api/events therefore merges every node's /events into one
// stream, server-side.
//
// Each node's frames pass through unchanged (event kind and data; the
// data names the node). Besides them the stream carries
// "event: upstream" frames, data {"node","open"}, whenever the stream
// from a node opens or breaks, so the page can tell which nodes it hears.

const (
	upstreamRetry     = time.Second      // after a broken or refused stream
	upstreamMissing   = 10 * time.Second // after a 404: the node has no /events
	peerScanInterval  = 2 * time.Second  // how often new members are picked up
	eventsHeartbeat   = 15 * time.Second
	mergedQueueFrames = 256
)

type sseFrame struct {
	event, data string
}

// eventsHandler serves api/events for the nodes list returns.
func eventsHandler(list func() []Peer, client *http.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fl, ok := w.(http.Flusher)
		if !ok {
			writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		fl.Flush()

		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		out := make(chan sseFrame, mergedQueueFrames)
		following := map[string]bool{}
		scan := func() {
			for _, p := range list() {
				if !following[p.ID] {
					following[p.ID] = true
					go follow(ctx, client, p.ID, list, out)
				}
			}
		}
		scan()
		peers := time.NewTicker(peerScanInterval)
		defer peers.Stop()
		beat := time.NewTicker(eventsHeartbeat)
		defer beat.Stop()
		for {
			var err error
			select {
			case <-ctx.Done():
				return
			case <-peers.C:
				scan()
				continue
			case <-beat.C:
				_, err = fmt.Fprint(w, ": heartbeat\n\n")
			case f := <-out:
				_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", f.event, f.data)
			}
			if err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// follow relays node id's event stream into out until ctx ends,
// reconnecting with Last-Event-ID so nothing is replayed twice while the
// node lives. After a refused connection (the node was likely killed and
// restarts with seq 1) it reconnects without it, so the new process's
// first events are not skipped.
func follow(ctx context.Context, client *http.Client, id string, list func() []Peer, out chan<- sseFrame) {
	lastID := ""
	send := func(f sseFrame) bool {
		select {
		case out <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	status := func(open bool) bool {
		b, _ := json.Marshal(map[string]any{"node": id, "open": open})
		return send(sseFrame{"upstream", string(b)})
	}
	for ctx.Err() == nil {
		wait := upstreamRetry
		addr, ok := lookup(list, id)
		if ok {
			opened, missing, err := stream(ctx, client, addr, &lastID, status, send)
			switch {
			case missing:
				wait = upstreamMissing
			case !opened && err != nil:
				lastID = ""
			}
			if opened && !status(false) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// stream reads one connection to http://addr/events.
func stream(ctx context.Context, client *http.Client, addr string, lastID *string,
	status func(bool) bool, send func(sseFrame) bool) (opened, missing bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events", nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, true, nil
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return false, false, fmt.Errorf("dashboard: events from %s: status %d", addr, resp.StatusCode)
	}
	if !status(true) {
		return true, false, ctx.Err()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20) // a request event carries its whole trace
	var f sseFrame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				if f.event == "" {
					f.event = "message"
				}
				f.data = strings.Join(data, "\n")
				if !send(f) {
					return true, false, ctx.Err()
				}
			}
			f, data = sseFrame{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			f.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case strings.HasPrefix(line, "id:"):
			*lastID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		}
	}
	return true, false, sc.Err()
}

func lookup(list func() []Peer, id string) (string, bool) {
	for _, p := range list() {
		if p.ID == id && p.HTTPAddr != "" {
			return p.HTTPAddr, true
		}
	}
	return "", false
}
