package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/dynago/dynago/client"
)

// A shopping cart kept in dynago: concurrent additions become siblings,
// which the application merges and writes back with the context it read.
func ExampleClient() {
	ctx := context.Background()
	c, err := client.New([]string{"127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"})
	if err != nil {
		log.Fatal(err)
	}

	v, err := c.Get(ctx, "cart:alice", nil)
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		log.Fatal(err)
	}
	// Merge siblings: the union of the carts concurrent writers stored.
	var items [][]byte
	for _, s := range v.Siblings {
		for item := range bytes.SplitSeq(s, []byte(",")) {
			if !slices.ContainsFunc(items, func(i []byte) bool { return bytes.Equal(i, item) }) {
				items = append(items, item)
			}
		}
	}
	items = append(items, []byte("milk"))

	// Writing with v.Context supersedes exactly the siblings read (and a
	// tombstone, if the key was deleted).
	_, err = c.Put(ctx, "cart:alice", bytes.Join(items, []byte(",")), &client.PutOptions{Context: v.Context, W: 2})
	var qe *client.QuorumError
	switch {
	case errors.As(err, &qe):
		// Unknown outcome: the write may still be applied. Reading again
		// shows what the cluster has.
		fmt.Printf("only %d of %d replicas acknowledged\n", qe.Acks, qe.Required)
	case err != nil:
		log.Fatal(err)
	}
}
