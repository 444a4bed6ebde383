// Package coord owns the arithmetic of a coordinator: when a put has enough
// acknowledgements, when a get has enough answers (or can no longer get
// them), and which replicas read repair must fix once the answers are in.
//
// It never sends, stores or reads anything and never looks at a clock: the
// node core feeds it answers and asks it questions. That keeps the quorum
// rules (the part of Dynamo most easily got subtly wrong) testable by table.
package coord
