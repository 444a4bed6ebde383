# dynago — build, test and generate.
#
# make test   installs what the tests need, then runs the gofmt check, go vet,
#             every test with the race detector, the simulator's seeds and
#             the go-ycsb binding's module (bench/).
# make build  builds the static binary into bin/dynago.
# make proto  regenerates the committed protobuf code.

GO        ?= go
PKGS      ?= ./...
# The race detector multiplies run time; the whole suite must stay well
# inside CI's budget on a 2-core machine.
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build test test-deps fmt-check vet unit fuzz-check sim-check bench-test bench proto clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/dynago ./cmd/dynago

test: test-deps fmt-check vet unit fuzz-check sim-check bench-test

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
	./storage:FuzzParseObjectKey \
	./storage:FuzzParseHintKey
fuzz-check:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The deterministic simulator under every fault kind: no acknowledged write
# lost, no delete resurrected, every seed converged. Then the negative
# control: last-write-wins must be caught losing writes.
SIM_FAULTS ?= partition,crash,restart,wipe,join,leave
sim-check:
	$(GO) run ./cmd/dynago sim run --seeds 200 --faults $(SIM_FAULTS) --quiet
	$(GO) run ./cmd/dynago sim run --seeds 20 --faults $(SIM_FAULTS) --lww --quiet

# The go-ycsb binding lives in its own module (bench/) so that go-ycsb's
# dependencies stay out of the dynago binary; ./... above does not reach it.
bench-test:
	./bench/test.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./server/ ./storage/ ./object/ ./ring/

proto:
	./proto/gen.sh

clean:
	rm -rf bin
