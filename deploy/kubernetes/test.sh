#!/usr/bin/env bash
# Vets and tests the deployment manifests' module (Kubernetes, and the systemd env example): decodes every manifest
# strictly into the Kubernetes API types and checks what matters (probes,
# image, selectors, env names the server reads). A module of its own so that
# k8s.io/api stays out of the main module. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
out=$(gofmt -l .)
if [ -n "$out" ]; then
	echo "gofmt needed on:"
	echo "$out"
	exit 1
fi
go vet ./...
go test -count=1 -timeout 5m ./...
