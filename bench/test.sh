#!/usr/bin/env bash
# Vets and tests the bench module (the go-ycsb binding), which has its own
# go.mod so that go-ycsb stays out of the main module. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
out=$(gofmt -l .)
if [ -n "$out" ]; then
	echo "gofmt needed on:"
	echo "$out"
	exit 1
fi
go vet ./...
go test -race -count=1 -timeout 5m ./...
