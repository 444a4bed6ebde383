#!/usr/bin/env bash
# Runs each fuzz target (pkg:FuzzName arguments) for FUZZTIME.
#
# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline
# exceeded" at the -fuzztime boundary when the machine is loaded
# (golang/go#75804, fixed in Go 1.27): no input failed, nothing was written
# to testdata/fuzz. Such a run is retried once; any other failure, or one
# that wrote a failing input, fails at once.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
for t in "$@"; do
	pkg=${t%%:*}
	fn=${t##*:}
	for attempt in 1 2; do
		echo "fuzz $pkg $fn ($FUZZTIME)"
		log=$(mktemp)
		"$GO" test -run '^$' -fuzz "^$fn\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		if [ "$rc" -eq 0 ]; then
			rm -f "$log"
			break
		fi
		if [ "$attempt" -eq 1 ] && grep -q 'context deadline exceeded' "$log" &&
			! grep -q -e 'Failing input written' -e 'panic:' -e '_test.go:[0-9]' "$log"; then
			echo "fuzz $pkg $fn: the fuzz coordinator's deadline race (golang/go#75804), no failing input; retrying once"
			rm -f "$log"
			continue
		fi
		rm -f "$log"
		exit "$rc"
	done
done
