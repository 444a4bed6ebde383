package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dynago/dynago/api"
)

// The answers of the admin endpoints, as package api declares them.
type (
	// Move is a partition changing owner.
	Move = api.Move
	// Transfer is data copied to a node entering a partition's preference
	// list, with the objects the answering node holds there (-1 unknown).
	Transfer = api.Transfer
	// Plan is a staged membership change (GET /admin/plan) or the one
	// just committed.
	Plan = api.Plan
	// Handoff is the progress of a running membership change (in
	// Cluster).
	Handoff = api.Handoff
	// Abort is the answer of POST /admin/abort.
	Abort = api.Abort
)

// Abort rolls the running membership change back (the node forwards it
// to the change's claimant). Nothing written is lost.
func (c *Client) Abort(ctx context.Context) (Abort, error) {
	var a Abort
	r, err := c.do(ctx, call{method: http.MethodPost, path: "/admin/abort"})
	if err != nil {
		return a, err
	}
	if r.status != http.StatusOK {
		return a, r.err("admin")
	}
	if err := json.Unmarshal(r.body, &a); err != nil {
		return a, fmt.Errorf("client: decoding the answer of POST /admin/abort: %w", err)
	}
	return a, nil
}

// Plan returns the staged membership change: alive nodes outside the ring
// join, staged leaves leave.
func (c *Client) Plan(ctx context.Context) (Plan, error) {
	var p Plan
	err := c.getJSON(ctx, "/admin/plan", &p)
	return p, err
}

// Commit starts the staged membership change.
func (c *Client) Commit(ctx context.Context) (Plan, error) {
	return c.postPlan(ctx, "/admin/commit")
}

// Leave stages node id to leave at the next commit and returns the plan.
func (c *Client) Leave(ctx context.Context, id string) (Plan, error) {
	return c.postPlan(ctx, "/admin/leave/"+url.PathEscape(id))
}

func (c *Client) postPlan(ctx context.Context, path string) (Plan, error) {
	var p Plan
	r, err := c.do(ctx, call{method: http.MethodPost, path: path})
	if err != nil {
		return p, err
	}
	if r.status != http.StatusOK {
		return p, r.err("admin")
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		return p, fmt.Errorf("client: decoding the answer of POST %s: %w", path, err)
	}
	return p, nil
}
