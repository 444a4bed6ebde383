package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dynago/dynago/client"
)

// A user's profile edits at R=1 W=1: fast, and with a session the user
// still always sees their own last edit, whichever node serves the read.
func ExampleClient_NewSession() {
	ctx := context.Background()
	c, err := client.New([]string{"127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"})
	if err != nil {
		log.Fatal(err)
	}
	s := c.NewSession()
	if _, err := s.Put(ctx, "profile:alice", []byte("name=Alice"), &client.PutOptions{W: 1}); err != nil {
		log.Fatal(err)
	}
	v, err := s.Get(ctx, "profile:alice", &client.GetOptions{R: 1})
	switch {
	case client.IsSessionUnavailable(err):
		// The nodes holding the edit are unreachable: the cluster refuses
		// to answer with an older profile. Retry later.
		fmt.Println("try again")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("%s\n", v.Siblings[0]) // name=Alice, never an older version
	}
	// Another process can continue the session: hand it s.Token() and
	// call c.ResumeSession there.
	_ = s.Token()
}
