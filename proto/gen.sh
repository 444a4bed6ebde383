#!/usr/bin/env bash
# Regenerates the Go code in proto/dynagopb from proto/dynago/v1/*.proto.
#
# The protoc plugins are pinned here, not in go.mod: they are build tools,
# and the generated code is committed so that building dynago never needs
# protoc. Run it after editing a .proto file and commit the result.
set -euo pipefail

readonly PROTOC_GEN_GO_VERSION=v1.36.12 # must match google.golang.org/protobuf in go.mod
readonly PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
readonly MODULE=github.com/dynago/dynago

proto_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${proto_dir}/.." && pwd)"
gobin="$(go env GOBIN)"
if [[ -z "${gobin}" ]]; then
	gobin="$(go env GOPATH)/bin"
fi

command -v protoc >/dev/null || {
	echo "gen.sh: protoc not found (Debian/Ubuntu: apt-get install protobuf-compiler)" >&2
	exit 1
}

# install_plugin BINARY PACKAGE VERSION: installs PACKAGE@VERSION unless the
# binary already reports that version, so reruns are fast and a stale plugin
# from another project is replaced rather than trusted.
install_plugin() {
	local bin="$1" pkg="$2" version="$3"
	local have=""
	if [[ -x "${gobin}/${bin}" ]]; then
		# "protoc-gen-go v1.36.12" / "protoc-gen-go-grpc 1.6.1"
		have="$("${gobin}/${bin}" --version 2>/dev/null | awk '{print $NF}')"
	fi
	if [[ "${have#v}" == "${version#v}" ]]; then
		return
	fi
	echo "gen.sh: installing ${pkg}@${version}" >&2
	GOBIN="${gobin}" go install "${pkg}@${version}"
}

install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "${PROTOC_GEN_GO_VERSION}"
install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "${PROTOC_GEN_GO_GRPC_VERSION}"

rm -f "${proto_dir}"/dynagopb/*.pb.go
cd "${repo_root}"
protoc \
	--proto_path=proto \
	--plugin=protoc-gen-go="${gobin}/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="${gobin}/protoc-gen-go-grpc" \
	--go_out=. --go_opt=module="${MODULE}" \
	--go-grpc_out=. --go-grpc_opt=module="${MODULE}" \
	proto/dynago/v1/*.proto
