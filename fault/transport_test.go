package fault

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/transport"
)

// inbox records when each message arrived.
type inbox struct {
	mu sync.Mutex
	at map[uint64]time.Time
}

func (b *inbox) handle(msgs []node.Message) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range msgs {
		b.at[m.ReqID] = now
	}
}

func (b *inbox) get(id uint64) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.at[id]
	return at, ok
}

func (b *inbox) wait(t *testing.T, id uint64) time.Time {
	t.Helper()
	var at time.Time
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("message %d arrives", id), func() bool {
		var ok bool
		at, ok = b.get(id)
		return ok
	})
	return at // recorded on arrival, so the poll interval does not blur it
}

func startTransport(t *testing.T, id ring.NodeID, h transport.Handler, peers map[ring.NodeID]string) *transport.Transport {
	t.Helper()
	tr, err := transport.New(transport.Config{ID: id, ListenAddr: "127.0.0.1:0", Peers: peers, CallTimeout: 30 * time.Second}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestTransportDelayAndCut(t *testing.T) {
	rx := &inbox{at: map[uint64]time.Time{}}
	b := startTransport(t, "b", rx.handle, nil)
	a := startTransport(t, "a", func([]node.Message) {}, map[ring.NodeID]string{"b": b.Addr()})
	inj := NewInjector(1)
	a.SetInterceptor(inj)
	send := func(id uint64) time.Time {
		now := time.Now()
		a.Send(node.Message{Type: node.MsgReplicaPut, From: "a", To: "b", ReqID: id, Key: []byte("k"), Object: []byte{1}})
		return now
	}

	// Warm the connection so that the delay below is not hidden in a dial.
	send(1)
	rx.wait(t, 1)

	mustSet(t, inj, Rules{Delay: map[string]Delay{"b": Fixed(20 * time.Millisecond)}})
	sent := send(2)
	if got := rx.wait(t, 2).Sub(sent); got < 20*time.Millisecond {
		t.Errorf("delayed message arrived after %v, want ≥ 20ms", got)
	}

	mustSet(t, inj, Rules{Cut: []string{"b"}})
	for id := uint64(10); id < 20; id++ {
		send(id)
	}
	// The interceptor runs inside Send, so the cut messages were discarded
	// before Send returned; the marker proves the link works again and that
	// the transport had every chance to deliver them.
	mustSet(t, inj, Rules{})
	send(100)
	rx.wait(t, 100)
	for id := uint64(10); id < 20; id++ {
		if _, ok := rx.get(id); ok {
			t.Errorf("message %d crossed the cut", id)
		}
	}
	if st := inj.Stats(); st.DroppedCut != 10 || st.Delayed != 1 {
		t.Errorf("injector stats %+v, want 10 cut, 1 delayed", st)
	}
}
