#!/usr/bin/env bash
# peer-bench.sh: dynago beside Redis, driven by the same redis-benchmark
# command lines, on this machine, one after the other. See --help and
# docs/BENCHMARKS.md ("Beside Redis").
#
# Redis runs alone with appendonly yes and appendfsync always: every write
# is fsynced before its reply, the durable single-node ceiling. dynago runs
# as three `dynago server` processes (N=3 R=2 W=2, data on disk, every
# acknowledged write fsynced on W replicas) with the RESP front end on.
# Everything binds 127.0.0.1 on free ports, lives in one temporary
# directory and is stopped on exit.
#
# Machine CPU per operation is what the whole machine spent during a run
# (busy jiffies of /proc/stat, every process, redis-benchmark included)
# divided by the operations it completed: on a CPU-bound machine that, not
# ops/s alone, says how much a store costs. It is only meaningful on an
# otherwise idle machine.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/peer-bench.sh [--short] [--help]

Runs a single Redis (appendonly yes, appendfsync always) and then a 3-node
dynago cluster (N=3 R=2 W=2, fsync on, RESP front end) on 127.0.0.1, drives
both with the same redis-benchmark command lines and prints one Markdown
table: ops/s, p50 latency and machine CPU per operation, with the ratios
dynago/redis, after the disk's fsync latency (one fsync, and three at once as
the three nodes issue them), which one client's SET depends on. Installs redis-server and redis-tools from Debian (apt-get)
when they are missing, which needs root. Builds dynago from this checkout
with Go unless PEER_BENCH_DYNAGO names a binary.

Runs, each for GET then SET (GET first, on the preloaded keys, so that no
SET of the run has yet made siblings a GET would refuse), with 100-byte
values over a keyspace of PEER_BENCH_KEYSPACE keys, all preloaded:
  PEER_BENCH_CLIENTS clients, no pipelining      (-c 50 -P 1)
  PEER_BENCH_CLIENTS clients, pipelines of 16    (-c 50 -P 16)
  1 client, no pipelining: the p50 latency        (-c 1 -P 1)
and, on dynago only, DSET (the blind write) on fresh keys, whose ratio is
against Redis's SET: SET is one write too, replacing the coordinator's
copy, so the two should cost about the same.

Options:
  --short   a smoke test: few requests and keys (numbers meaningless)
  --help    this text

Environment:
  PEER_BENCH_REQUESTS    requests per multi-client run (default 100000; --short 2000)
  PEER_BENCH_REQUESTS_1  requests per 1-client run (default 10000; --short 200)
  PEER_BENCH_KEYSPACE    keys, preloaded in both systems (default 100000; --short 2000)
  PEER_BENCH_CLIENTS     clients of the multi-client runs (default 50)
  PEER_BENCH_PIPELINE    pipeline depth of the pipelined runs (default 16)
  PEER_BENCH_DSET        0 to skip dynago's DSET rows (default 1)
  PEER_BENCH_DIR         parent of the temporary directory (default $TMPDIR or
                         /tmp); it must be on a real disk, not tmpfs, for the
                         fsyncs to mean anything
  PEER_BENCH_DYNAGO      a dynago binary to use instead of building one
  PEER_BENCH_KEEP        1 keeps the temporary directory (logs, data)
  PEER_BENCH_PROCS       every dynago node's GOMAXPROCS (default 0: left to
                         Go, every CPU each; docs/BENCHMARKS.md has 1 against
                         the default)
  PEER_BENCH_DYNAGO_FLAGS  extra flags for every dynago server, split on
                         spaces (e.g. "--lww": SET is then one blind write)
  PEER_BENCH_TMPFS       1: afterwards, a second 3-node dynago with its data
                         on tmpfs (/dev/shm, no fsync cost) runs the 1-client
                         GET and SET again (rows "dynago-tmpfs"): how much of
                         one client's latency is this machine's disk

The numbers are only valid on an otherwise idle machine: the CPU column
counts every process on it. The script warns when the machine was busy just
before it started.
EOF
}

short=0
while (($#)); do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--short) short=1 ;;
	*)
		echo "peer-bench: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done

if ((short)); then
	requests=${PEER_BENCH_REQUESTS:-2000}
	requests1=${PEER_BENCH_REQUESTS_1:-200}
	keyspace=${PEER_BENCH_KEYSPACE:-2000}
else
	requests=${PEER_BENCH_REQUESTS:-100000}
	requests1=${PEER_BENCH_REQUESTS_1:-10000}
	keyspace=${PEER_BENCH_KEYSPACE:-100000}
fi
clients=${PEER_BENCH_CLIENTS:-50}
pipeline=${PEER_BENCH_PIPELINE:-16}
with_dset=${PEER_BENCH_DSET:-1}
value_size=100
[[ $with_dset == [01] ]] || {
	echo "peer-bench: PEER_BENCH_DSET must be 0 or 1, not '$with_dset'" >&2
	exit 2
}
for v in requests:REQUESTS requests1:REQUESTS_1 keyspace:KEYSPACE clients:CLIENTS pipeline:PIPELINE; do
	var=${v%%:*}
	[[ ${!var} =~ ^[1-9][0-9]*$ ]] || {
		echo "peer-bench: PEER_BENCH_${v#*:} must be a positive integer, not '${!var}'" >&2
		exit 2
	}
done

say() { echo "peer-bench: $*" >&2; }
die() {
	say "$*"
	exit 1
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# --- what it needs ------------------------------------------------------

# retry N CMD...: as scripts/install-test-deps.sh, apt mirrors fail
# transiently; pause a little longer after each failure.
retry() {
	local n=$1 i
	shift
	for ((i = 1; i <= n; i++)); do
		"$@" && return 0
		say "attempt $i/$n failed: $*"
		((i < n)) && sleep $((i * 5))
	done
	return 1
}

# apt_install PKG...: a half-configured earlier install makes apt-get
# refuse everything until `apt-get install -f` repairs it, so repair and
# try again before giving up. (Where no policy-rc.d forbids it, Debian's
# redis-server package also starts a system Redis on port 6379; this
# script never uses it and leaves it alone.)
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq &&
		{ apt-get install -y -qq "$@" >/dev/null ||
			{ apt-get install -f -y -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null; }; }
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null; } || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them yourself"
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run 'sudo apt-get install ${missing[*]}' or run this script as root"
	say "installing ${missing[*]} from Debian..."
	retry 3 apt_install "${missing[@]}" || die "could not install ${missing[*]}"
fi
for c in redis-server redis-benchmark redis-cli curl awk; do
	command -v "$c" >/dev/null || die "$c is missing"
done

# --- the temporary directory and cleanup ---------------------------------

parent=${PEER_BENCH_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$parent/peer-bench.XXXXXX")
pids=()

# stop PID: SIGTERM, up to 15 s to exit (dynago runs with --drain-timeout
# 0s; Redis exits at once), then SIGKILL. Only processes this script
# started are ever signalled, by their own PID.
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		stop "$pid"
	done
	pids=()
	if [ "${PEER_BENCH_KEEP:-0}" = 1 ]; then
		say "kept $work ${shm_work:-}"
	else
		rm -rf "$work" ${shm_work:+"$shm_work"}
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# df names ext4 as such; stat -f only knows "ext2/ext3".
fstype=$(df --output=fstype "$work" 2>/dev/null | tail -n 1 || stat -f -c %T "$work")
[ "$fstype" != tmpfs ] || say "WARNING: $work is on tmpfs: the fsyncs cost nothing there; set PEER_BENCH_DIR to a directory on disk"

# --- ports -----------------------------------------------------------------

# free_port VAR: sets VAR to a port nothing listens on (TCP or UDP: gossip
# uses both), below the kernel's ephemeral range so that no outgoing
# connection takes it meanwhile, and not handed out before by this script.
# It sets a variable rather than printing: in a $(...) subshell the record
# of ports handed out would be lost.
taken=" "
free_port() {
	local lo hi used p i
	read -r hi _ </proc/sys/net/ipv4/ip_local_port_range
	hi=$((hi - 1))
	lo=$((hi - 12000))
	((lo >= 1024)) || { lo=20000 hi=29999; } # an unusual range: take a fixed one
	if command -v ss >/dev/null; then
		used=" $(ss -Htuln | awk '{n = split($5, a, ":"); printf "%s ", a[n]}')"
	else
		used=" "
	fi
	for ((i = 0; i < 1000; i++)); do
		p=$((lo + RANDOM % (hi - lo + 1)))
		[[ $used == *" $p "* || $taken == *" $p "* ]] && continue
		# Without ss, at least nothing must accept a TCP connection there.
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		taken+="$p "
		printf -v "$1" %s "$p"
		return 0
	done
	die "no free port found"
}

# --- measurement -------------------------------------------------------------

clk_tck=$(getconf CLK_TCK)

# busy_jiffies: CPU time every core spent on anything but idle and iowait
# since boot, in jiffies (guest time is already counted in user).
busy_jiffies() {
	local user nice system irq softirq steal
	# cpu user nice system idle iowait irq softirq steal guest guest_nice
	read -r _ user nice system _ _ irq softirq steal _ </proc/stat
	echo $((user + nice + system + irq + softirq + steal))
}

# The machine should be idle: sample it for 2 s before anything starts.
b0=$(busy_jiffies)
sleep 2
b1=$(busy_jiffies)
idle_busy=$(awk -v d=$((b1 - b0)) -v hz="$clk_tck" -v n="$(nproc)" 'BEGIN { printf "%.0f", 100 * d / hz / 2 / n }')
if ((idle_busy > 5)); then
	say "WARNING: the machine was ${idle_busy}% busy before the benchmark started: the numbers are not valid (the CPU column counts every process)"
fi

value=$(printf "%${value_size}s" "" | tr ' ' x) # redis-benchmark -d fills values with 'x'
declare -A rps p50 cpu
failed=0
results=()

# bench SYSTEM PORT TEST CLIENTS PIPELINE REQUESTS: one redis-benchmark run,
# its CSV parsed, the machine's busy CPU around it. TEST is get, set or
# dset; get and set are redis-benchmark's own tests (-t), byte for byte
# the same command line for both systems.
bench() {
	local sys=$1 port=$2 test=$3 c=$4 p=$5 n=$6 key=$1/$3/$4/$5
	local -a cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -n "$n" -P "$p" --csv)
	case $test in
	get | set) cmd+=(-d "$value_size" -r "$keyspace" -t "$test") ;;
	# Fresh keys (a keyspace of 10^9): a blind write onto a key that has
	# a value would add a sibling to it, not replace it.
	dset) cmd+=(-r 1000000000 DSET "key:__rand_int__" "$value") ;;
	esac
	local out err=$work/bench.err before after line
	say "$sys: ${test^^} -c $c -P $p -n $n"
	before=$(busy_jiffies)
	if ! out=$("${cmd[@]}" 2>"$err"); then
		say "$sys ${test^^} -c $c -P $p failed: $(tail -c 300 "$err")"
		failed=1
		results+=("$key")
		return 0
	fi
	after=$(busy_jiffies)
	# redis-benchmark 7 --csv: a header, then one row per test:
	# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
	line=$(grep -v '^"test"' <<<"$out" | grep '^"' | tail -n 1 || true)
	head -n 1 <<<"$out" | grep -q '"p50_latency_ms"' || die "redis-benchmark's CSV has no p50_latency_ms column (Redis 7 or later is needed): $(head -n 1 <<<"$out")"
	[ -n "$line" ] || die "no result in redis-benchmark's output: $out"
	rps[$key]=$(awk -F'","' '{print $2}' <<<"$line")
	p50[$key]=$(awk -F'","' '{print $5}' <<<"$line")
	cpu[$key]=$(awk -v d=$((after - before)) -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')
	results+=("$key")
}

# runs SYSTEM PORT: every run against one system, in the table's order.
runs() {
	local sys=$1 port=$2 test
	for test in get set; do
		bench "$sys" "$port" "$test" "$clients" 1 "$requests"
		bench "$sys" "$port" "$test" "$clients" "$pipeline" "$requests"
		bench "$sys" "$port" "$test" 1 1 "$requests1"
	done
	if [ "$sys" = dynago ] && [ "$with_dset" = 1 ]; then
		bench "$sys" "$port" dset "$clients" 1 "$requests"
		bench "$sys" "$port" dset "$clients" "$pipeline" "$requests"
		bench "$sys" "$port" dset 1 1 "$requests1"
	fi
}

# preload PORT: SET every key of the keyspace once, as redis-benchmark
# names them (key:%012d), through one pipelined connection, so that every
# GET finds a 100-byte value and every SET replaces one.
preload_file=$work/preload.resp
awk -v n="$keyspace" -v v="$value" 'BEGIN {
	for (i = 0; i < n; i++) {
		k = sprintf("key:%012d", i)
		printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
	}
}' >"$preload_file"
preload() {
	local out
	say "preloading $keyspace keys..."
	out=$(redis-cli -h 127.0.0.1 -p "$1" --pipe <"$preload_file" 2>&1) || die "preload failed: $out"
	grep -q "errors: 0, replies: $keyspace" <<<"$out" || die "preload failed: $out"
}

# --- Redis -----------------------------------------------------------------

redis_port=
free_port redis_port
mkdir "$work/redis"
say "starting Redis on 127.0.0.1:$redis_port (appendonly yes, appendfsync always)"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" \
	--appendonly yes --appendfsync always --save "" \
	--daemonize no --logfile "$work/redis/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for ((i = 0; ; i++)); do
	[ "$(redis-cli -h 127.0.0.1 -p "$redis_port" PING 2>/dev/null || true)" = PONG ] && break
	((i < 100)) || die "Redis did not start: $(tail -n 5 "$work/redis/redis.log")"
	sleep 0.1
done
redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
preload "$redis_port"
runs redis "$redis_port"
stop "$redis_pid"
pids=() # Redis was the only process so far

# --- dynago ----------------------------------------------------------------

if [ -n "${PEER_BENCH_DYNAGO:-}" ]; then
	dynago=$PEER_BENCH_DYNAGO
	[ -x "$dynago" ] || die "PEER_BENCH_DYNAGO=$dynago is not an executable"
else
	command -v go >/dev/null || die "Go is needed to build dynago (https://go.dev/dl), or set PEER_BENCH_DYNAGO"
	say "building dynago..."
	dynago=$work/dynago
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$dynago" ./cmd/dynago)
fi
if [ -n "${PEER_BENCH_DYNAGO:-}" ]; then
	# The binary's own commit (make build stamps it), not the checkout's.
	commit=$("$dynago" version 2>/dev/null | awk '/^commit:/ { print substr($2, 1, 7); exit }')
	commit="${commit:-unknown} (PEER_BENCH_DYNAGO)"
else
	commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$root" diff --quiet HEAD 2>/dev/null || commit+=" (modified)"
fi

# The disk's fsync floors, measured where the nodes' data will live: one
# client's SET waits for two of the three fsyncs the nodes issue at nearly
# the same moment on this one disk, so its latency says as much about the
# disk as about dynago, and VMs differ most there (docs/BENCHMARKS.md,
# "Where a one-client put goes"). The binary measures them itself; one
# without the experiment leaves them "?".
say "measuring the disk's fsync floors (dynago bench --experiment floors)"
floors=$(TMPDIR="$work" "$dynago" bench --experiment floors 2>/dev/null || true)
fsync1=$(awk '/^ *one fsync/ { print $NF; exit }' <<<"$floors")
fsync3=$(awk '/^ *three concurrent fsyncs/ { print $NF; exit }' <<<"$floors")

declare -a http rpc gossip resp
clusters=0
# start_dynago DIR: three nodes with their data and logs under DIR, on fresh
# ports, ready and with warm connections; their PIDs join pids.
start_dynago() {
	local dir=$1 i j t join out members="" name="peer-bench-$$-$((++clusters))"
	for i in 1 2 3; do
		free_port "http[$i]"
		free_port "rpc[$i]"
		free_port "gossip[$i]"
		free_port "resp[$i]"
		members+="${members:+,}n$i=127.0.0.1:${rpc[i]}/127.0.0.1:${http[i]}"
	done
	for i in 1 2 3; do
		join=""
		for j in 1 2 3; do
			((j == i)) || join+="${join:+,}127.0.0.1:${gossip[j]}"
		done
		env "${procs_env[@]}" "$dynago" server --id "n$i" --data-dir "$dir/n$i" \
			--http-addr "127.0.0.1:${http[i]}" --rpc-addr "127.0.0.1:${rpc[i]}" \
			--gossip-addr "127.0.0.1:${gossip[i]}" --resp-addr "127.0.0.1:${resp[i]}" \
			--cluster "$members" --join "$join" --cluster-name "$name" \
			--n 3 --r 2 --w 2 --drain-timeout 0s "${extra_flags[@]}" >"$dir/n$i.log" 2>&1 &
		pids+=("$!")
	done
	say "started dynago n1..n3 in $dir (RESP on 127.0.0.1:${resp[1]}, ${resp[2]}, ${resp[3]}); waiting until ready"
	for i in 1 2 3; do
		for ((t = 0; ; t++)); do
			curl -fsS -o /dev/null "http://127.0.0.1:${http[i]}/readyz" 2>/dev/null && break
			((t < 300)) || die "dynago n$i not ready after 30 s: $(tail -n 5 "$dir/n$i.log")"
			sleep 0.1
		done
	done
	# Warm every node's connections to the others: a read at R=3 (every
	# replica must answer) of a key nobody writes, from each node, until it
	# succeeds, so that no benchmark request waits for a first dial.
	for i in 1 2 3; do
		for ((t = 0; ; t++)); do
			out=$(redis-cli -h 127.0.0.1 -p "${resp[i]}" DGET peer-bench:warm R 3 2>&1 || true)
			[ -z "$out" ] && break # the empty context alone: no history, every replica answered
			((t < 60)) || die "dynago n$i: a read at R=3 still fails: $out"
			sleep 0.5
		done
	done
}

read -ra extra_flags <<<"${PEER_BENCH_DYNAGO_FLAGS:-}"
# The three nodes stand in for three machines, but each Go runtime sizes
# itself for the whole one. Giving each its share instead (1 on 2 CPUs)
# was measured and not kept: docs/BENCHMARKS.md, "GOMAXPROCS of co-located
# nodes". A GOMAXPROCS in the environment reaches the nodes as it is.
procs=${PEER_BENCH_PROCS:-0}
[[ $procs =~ ^[0-9]+$ ]] || die "PEER_BENCH_PROCS must be a number, not $procs"
procs_env=()
if ((procs > 0)); then
	procs_env=(GOMAXPROCS="$procs")
	procs_desc="GOMAXPROCS $procs each"
elif [[ -n ${GOMAXPROCS:-} ]]; then
	procs_desc="GOMAXPROCS $GOMAXPROCS each (from the environment)"
else
	procs_desc="GOMAXPROCS left to Go ($(nproc) each)"
fi
start_dynago "$work"
preload "${resp[1]}"
runs dynago "${resp[1]}"

# The same cluster with its data on tmpfs, for one client's latency only.
if [ "${PEER_BENCH_TMPFS:-0}" = 1 ]; then
	[ -d /dev/shm ] || die "PEER_BENCH_TMPFS=1 needs /dev/shm"
	for pid in "${pids[@]}"; do
		stop "$pid"
	done
	pids=()
	shm_work=$(mktemp -d /dev/shm/peer-bench.XXXXXX)
	start_dynago "$shm_work"
	preload "${resp[1]}"
	for test in get set; do
		bench dynago-tmpfs "${resp[1]}" "$test" 1 1 "$requests1"
	done
fi

# --- the table -------------------------------------------------------------

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "Date: $(date -u +%Y-%m-%dT%H:%MZ). dynago commit: $commit. Redis $redis_version."
echo "Machine: $(nproc) CPUs ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), data on $fstype."
echo "Disk: one fsync ${fsync1:-?} ms, three at once ${fsync3:-?} ms (medians of dynago bench --experiment floors, on the data's filesystem)."
echo "Redis: one redis-server, appendonly yes, appendfsync always. dynago: 3 nodes, N=3 R=2 W=2, fsync on, $procs_desc."
echo "redis-benchmark -h 127.0.0.1 -p PORT -c C -n REQUESTS -P P --csv -d $value_size -r $keyspace -t get|set, $keyspace keys preloaded;"
echo "$requests requests per run at $clients clients, $requests1 at 1 client. dynago: every run goes to node n1's RESP port"
echo "(redis-benchmark sends all its clients to one host:port; dynago's nodes are equal coordinators, and with 3 nodes"
echo "and N=3 every node holds every key). Machine CPU µs/op: busy CPU time of the whole machine during the run"
echo "(/proc/stat, every process, redis-benchmark included) / requests. Machine busy before the run: ${idle_busy}%."
if [ -n "${shm_work:-}" ]; then
	echo "dynago-tmpfs: the same 3-node cluster started afresh with its data on tmpfs (/dev/shm: fsyncs cost nothing), preloaded the same, 1-client runs only."
fi
if [ "$with_dset" = 1 ]; then
	echo "DSET (dynago only): redis-benchmark ... -r 1000000000 DSET key:__rand_int__ <$value_size bytes>, blind writes of fresh keys; ratios against Redis SET."
fi
echo
echo "| system | test | clients | pipeline | ops/s | p50 ms | machine CPU µs/op | dynago/redis ops/s | dynago/redis p50 | dynago/redis CPU/op |"
echo "|---|---|---|---|---|---|---|---|---|---|"
# ratio A B: A/B to two decimals, or – where either is missing.
ratio() {
	if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "–" }'
	else
		printf "–"
	fi
}
row() {
	local key=$1 sys test c p ref r1="" r2="" r3=""
	IFS=/ read -r sys test c p <<<"$key"
	if [ "$sys" != redis ]; then
		ref=redis/$test/$c/$p
		[ "$test" != dset ] || ref=redis/set/$c/$p
		r1=$(ratio "${rps[$key]:-}" "${rps[$ref]:-}")
		r2=$(ratio "${p50[$key]:-}" "${p50[$ref]:-}")
		r3=$(ratio "${cpu[$key]:-}" "${cpu[$ref]:-}")
	fi
	if [ -z "${rps[$key]:-}" ]; then
		echo "| $sys | ${test^^} | $c | $p | failed | | | | | |"
		return
	fi
	printf '| %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s |\n' \
		"$sys" "${test^^}" "$c" "$p" "${rps[$key]}" "${p50[$key]}" "${cpu[$key]}" "$r1" "$r2" "$r3"
}
# Redis's row, then dynago's, for each run.
for key in "${results[@]}"; do
	if [[ $key == redis/* ]]; then
		row "$key"
		row "dynago/${key#redis/}"
		[ -z "${rps[dynago-tmpfs/${key#redis/}]:-}" ] || row "dynago-tmpfs/${key#redis/}"
	fi
done
for key in "${results[@]}"; do
	if [[ $key == dynago/dset/* ]]; then
		row "$key"
	fi
done
if ((failed)); then
	say "some runs failed (see above); logs: $work (set PEER_BENCH_KEEP=1 to keep them)"
	exit 1
fi
