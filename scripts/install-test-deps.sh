#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine. Safe to rerun.
#
# - the Go modules of go.mod;
# - Debian's chromium at /usr/bin/chromium, for the dashboard's browser
#   tests (dashboard/browser_test.go). Those tests skip when chromium is
#   missing on a developer machine, and fail when it is missing in CI
#   (env CI set), so CI must run this script as root first.
#
# apt mirrors fail transiently, so every apt step is retried; a broken
# half-install is repaired with `apt-get install -f` before the retry.
set -euo pipefail
command -v go >/dev/null || { echo "install-test-deps: Go is required (https://go.dev/dl)" >&2; exit 1; }
go mod download

CHROMIUM=/usr/bin/chromium

# retry N CMD...: run CMD up to N times, pausing a little longer each time.
retry() {
	local n=$1 i
	shift
	for ((i = 1; i <= n; i++)); do
		"$@" && return 0
		echo "install-test-deps: attempt $i/$n failed: $*" >&2
		((i < n)) && sleep $((i * 5))
	done
	return 1
}

install_chromium() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq &&
		{ apt-get install -y -qq chromium >/dev/null ||
			{ apt-get install -f -y -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }; }
}

if [ -x "$CHROMIUM" ]; then
	: # already installed: nothing to do, and no network needed
elif ! command -v apt-get >/dev/null; then
	echo "install-test-deps: no apt-get; install chromium at $CHROMIUM yourself for the dashboard browser tests" >&2
elif [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: not root; run 'sudo apt-get install chromium' for the dashboard browser tests" >&2
else
	echo "install-test-deps: installing chromium (dashboard browser tests)..."
	retry 3 install_chromium || { echo "install-test-deps: could not install chromium" >&2; exit 1; }
	[ -x "$CHROMIUM" ] || { echo "install-test-deps: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
fi
