# dynago — build, test and generate.
#
# make test   installs what the tests need, then runs the gofmt check, go vet,
#             every test with the race detector, the simulator's seeds, two
#             chaos runs on real processes and the go-ycsb binding's module
#             (bench/).
# make build  builds the static binary into bin/dynago.
# make image  builds the FROM-scratch Docker image dynago:dev around it
#             (deploy/Dockerfile; run it with deploy/compose.yaml).
# make proto  regenerates the committed protobuf code.
# make peer-bench  dynago beside Redis through the same redis-benchmark
#             command lines (scripts/peer-bench.sh; not part of `make test`).

GO        ?= go
PKGS      ?= ./...
# The race detector multiplies run time; the whole suite must stay well
# inside CI's budget on a 2-core machine.
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build image test test-deps fmt-check vet unit fuzz-check sim-check chaos-check container-check bench-test k8s-check bench peer-bench proto clean

all: build

# VERSION stamps 'dynago version' and dynago_build_info; the commit comes
# from the Go toolchain's VCS stamp, or COMMIT where that stamp is off.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X github.com/dynago/dynago/buildinfo.Version=$(VERSION) -X github.com/dynago/dynago/buildinfo.Commit=$(COMMIT)" -o bin/dynago ./cmd/dynago

# The build context is only the binary and an empty data directory, so that
# nothing else of the work tree is sent to the daemon.
IMAGE ?= dynago:dev
image: build
	rm -rf bin/image && mkdir -p bin/image/data && cp bin/dynago bin/image/
	docker build -f deploy/Dockerfile -t $(IMAGE) bin/image

test: test-deps fmt-check vet unit fuzz-check sim-check chaos-check container-check bench-test k8s-check

# Tools the tests need that a fresh machine may lack. Idempotent.
test-deps:
	@./scripts/install-test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test $(TESTFLAGS) $(PKGS)

# Every decoder of input from clients and peers, and the handlers behind
# them, fuzzed for FUZZTIME each: contexts, objects, RPC envelopes, the
# gRPC Step handler in front of a real core, the HTTP handlers, gossip
# state and storage keys. The committed corpora (testdata/fuzz/) run as
# regression tests in `unit` too. A failing input is written to the
# package's testdata/fuzz/ for the fix's regression test.
FUZZTIME ?= 10s
FUZZ_TARGETS ?= \
	./dvv:FuzzDecodeContext \
	./object:FuzzDecode \
	./transport:FuzzEnvelope \
	./transport:FuzzStep \
	./httpapi:FuzzDecodeContextHeader \
	./httpapi:FuzzHandlers \
	./cluster:FuzzDecode \
	./membership:FuzzDecodeState \
	./membership:FuzzDecodeMeta \
	./membership:FuzzReceive \
	./storage:FuzzParseObjectKey \
	./storage:FuzzParseHintKey \
	./session:FuzzDecode
fuzz-check:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(FUZZ_TARGETS)

# The deterministic simulator under every fault kind: no acknowledged write
# lost, no delete resurrected, every seed converged. Then the negative
# control: last-write-wins must be caught losing writes.
SIM_FAULTS ?= partition,crash,restart,wipe,join,leave
sim-check:
	$(GO) run ./cmd/dynago sim run --seeds 200 --faults $(SIM_FAULTS) --quiet
	$(GO) run ./cmd/dynago sim run --seeds 20 --faults $(SIM_FAULTS) --lww --quiet
	# Session guarantees at R=1 W=1 under every fault kind, then the
	# tokenless control, which must find read-your-writes violations.
	$(GO) run ./cmd/dynago sim run --seeds 10 --faults $(SIM_FAULTS),outage --r 1 --w 1 --sessions --quiet
	$(GO) run ./cmd/dynago sim run --seeds 3 --faults "" --r 1 --w 1 --session-control --quiet

# Chaos on real processes: a fresh 5-node cluster of `dynago server`
# processes, a set workload, every fault kind; nothing acknowledged may be
# lost and the cluster must converge. Then the negative control: under
# last-write-wins the checker must catch lost elements (exit 0 means it
# did). Longer runs and their figures: docs/RELIABILITY.md.
CHAOS_DURATION ?= 40s
chaos-check:
	$(GO) run ./cmd/dynago chaos --duration $(CHAOS_DURATION) --seed 1
	$(GO) run ./cmd/dynago chaos --duration 12s --seed 2 --lww --nemesis kill,partition --converge-timeout 15s

# The same chaos checker against a 5-node cluster in containers built from
# the FROM-scratch image, its partitions real cuts (docker network
# disconnect). Alone, not inside `unit`: five containers load both cores.
container-check:
	DYNAGO_CONTAINER_TEST=1 $(GO) test -count=1 -timeout 15m -run TestContainerChaos ./deploy/

# The go-ycsb binding lives in its own module (bench/) so that go-ycsb's
# dependencies stay out of the dynago binary; ./... above does not reach it.
bench-test:
	./bench/test.sh

# The Kubernetes manifests, decoded strictly (deploy/kubernetes/, own module).
k8s-check:
	./deploy/kubernetes/test.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./server/ ./storage/ ./object/ ./ring/

# dynago beside a durable Redis, through the same redis-benchmark command
# lines (docs/BENCHMARKS.md, "Beside Redis"). Not part of `make test`: it
# installs Debian packages, runs for minutes and is only meaningful on an
# idle machine. PEER_BENCH_FLAGS=--short is the smoke test.
peer-bench:
	./scripts/peer-bench.sh $(PEER_BENCH_FLAGS)

proto:
	./proto/gen.sh

clean:
	rm -rf bin
