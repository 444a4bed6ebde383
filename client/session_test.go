package client_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/session"
)

func TestSessionCarriesItsToken(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	s := c.NewSession()
	if _, err := s.Put(ctx, "cart", []byte("apple"), nil); err != nil {
		t.Fatal(err)
	}
	tok, err := session.Parse(s.Token())
	if err != nil || tok.Len() != 1 {
		t.Fatalf("token after a put: %q %v", s.Token(), err)
	}
	v, err := s.Get(ctx, "cart", nil)
	if err != nil || len(v.Siblings) != 1 || string(v.Siblings[0]) != "apple" {
		t.Fatalf("get: %v %v", v, err)
	}
	reqs := b.Requests()
	if len(reqs[len(reqs)-1].Session) == 0 {
		t.Fatal("the session's get carried no floor for the key it wrote")
	}
	if err := s.Delete(ctx, "cart", &client.PutOptions{Context: v.Context}); err != nil {
		t.Fatal(err)
	}
	tok, _ = session.Parse(s.Token())
	if _, deleted := tok.Floor([]byte("cart")); !deleted {
		t.Fatal("the token does not record the session's delete")
	}
	// A plain client call carries no token.
	if _, err := c.Get(ctx, "cart", nil); err == nil {
		t.Fatal("deleted key read back")
	}
	if reqs := b.Requests(); len(reqs[len(reqs)-1].Session) != 0 {
		t.Fatal("a call outside the session carried a floor")
	}
	// Resuming elsewhere keeps what the session saw.
	s2, err := c.ResumeSession(s.Token())
	if err != nil || s2.Token() != s.Token() {
		t.Fatalf("resume: %v", err)
	}
	if _, err := c.ResumeSession("not a token!"); err == nil {
		t.Fatal("a bad token resumed")
	}
}

func TestSessionConcurrentCallsMergeTokens(t *testing.T) {
	addr, _ := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	s := c.NewSession()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Put(ctx, fmt.Sprintf("k%d", i), []byte("v"), nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tok, err := session.Parse(s.Token())
	if err != nil || tok.Len() != 16 {
		t.Fatalf("token holds %d keys (%v), want all 16 written concurrently", tok.Len(), err)
	}
}

func TestSessionUnavailableError(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	s := c.NewSession()
	if _, err := s.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	before := s.Token()
	b.Fail(node.Reply{Code: node.CodeSessionUnavailable, Acks: 1, Required: 1, Err: "not yet"})
	_, err := s.Get(ctx, "k", nil)
	if !client.IsSessionUnavailable(err) {
		t.Fatalf("err = %v, want session_unavailable", err)
	}
	if s.Token() != before {
		t.Fatal("a failed read changed the session's token")
	}
}
