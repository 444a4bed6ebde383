package transport

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Probe tells a working address from one that reaches nothing and from
// one that reaches another node.
func TestProbe(t *testing.T) {
	start := func(id string) *Transport {
		tr, err := New(Config{ID: ring.NodeID(id), ListenAddr: "127.0.0.1:0"}, func([]node.Message) {})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a, b := start("a"), start("b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Probe(ctx, "b", b.Addr()); err != nil {
		t.Fatalf("probing b at its address: %v", err)
	}
	if err := a.Probe(ctx, "b", a.Addr()); err == nil || !strings.Contains(err.Error(), "reached") {
		t.Fatalf("probing b at a's address: %v, want a refusal naming the node reached", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if err := a.Probe(short, "b", dead); err == nil {
		t.Fatal("probing an address nobody listens on succeeded")
	}
}
