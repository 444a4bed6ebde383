// Package kubernetes holds no code: its test decodes the manifests beside it
// strictly into the Kubernetes API types. It is a module of its own so that
// k8s.io/api and k8s.io/apimachinery stay out of the main module's go.mod
// (and out of every build of the dynago binary), as bench/ does for go-ycsb.
package kubernetes
