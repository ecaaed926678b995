# fleetflow — see README.md. Main targets:
#   make demo   local stack + virtual fleet, runs testdata/missions, exits 0 when all completed
#   make test   vet, workflowcheck, unit, integration and end-to-end tests
#   make dev    the local stack, staying up for the CLI and the Web UI
#   make bench  benchmarks (not tests)
#   make chaos  fault-injection suite: kill and restart every component mid-mission
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1

.PHONY: all build demo dev test vet workflowcheck services bench clean thirdparty fuzz chaos webui-screenshot

all: build

bin/temporal:
	@echo "building the pinned Temporal CLI $(TEMPORAL_CLI_VERSION) into ./bin (first time only, a few minutes)"
	GOBIN=$(BIN) GOFLAGS=-mod=mod $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# thirdparty: the independent VDA 5050 vehicle the end-to-end tests run (npm
# vda-5050-lib, pinned by testdata/thirdparty/vda5050-lib/package-lock.json);
# installed only when it is missing (rm -rf that node_modules to reinstall).
THIRDPARTY_VDA5050_LIB := testdata/thirdparty/vda5050-lib

thirdparty: $(THIRDPARTY_VDA5050_LIB)/node_modules/vda-5050-lib/package.json

$(THIRDPARTY_VDA5050_LIB)/node_modules/vda-5050-lib/package.json:
	@command -v node >/dev/null 2>&1 || { echo "make thirdparty: node (Node.js) is not installed; it runs the third-party VDA 5050 vehicle of the end-to-end tests. Install it with: apt-get install nodejs npm" >&2; exit 1; }
	@command -v npm >/dev/null 2>&1 || { echo "make thirdparty: npm is not installed; it installs $(THIRDPARTY_VDA5050_LIB)/node_modules. Install it with: apt-get install nodejs npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --prefix $(THIRDPARTY_VDA5050_LIB)
	@test -f $@ || { echo "make thirdparty: npm ci did not install $@" >&2; exit 1; }

bin/workflowcheck:
	GOBIN=$(BIN) GOFLAGS=-mod=mod $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0

build:
	$(GO) build -o bin/starter ./starter
	$(GO) build -o bin/workers ./workers
	$(GO) build -o bin/bench ./bench

demo: build bin/temporal
	./bin/starter demo

dev: build bin/temporal
	./bin/starter dev

services:
	./scripts/ensure-services.sh

# webui-screenshot: with `make dev` up (and a mission or two run), the
# Web UI's workflow list with fleetflow's columns, checked and saved.
webui-screenshot: build
	./bin/starter webui screenshot --out webui-workflows.png

vet:
	$(GO) vet ./...

workflowcheck: bin/workflowcheck
	./bin/workflowcheck ./workflows/...

test: build bin/temporal services vet workflowcheck thirdparty
	$(GO) test -count=1 -timeout 30m ./...  # the starter package (end-to-end tests) takes about 13 min on 2 cores
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

# fuzz: every go test -fuzz target for FUZZTIME each (seed corpora in
# testdata/fuzz); make test runs them briefly. make test's budget is a count
# of executions, not a duration: with a duration, Go before 1.27 can fail a
# target with a bare "context deadline exceeded" when -fuzztime expires while
# a worker is mid-call (golang/go#75804, fixed in Go 1.27; CI hit it on
# FuzzParseRollout). 100000 executions take 5-9 s a target on 2 cores.
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 100000x
FUZZ_TARGETS := FuzzHandle:./workers/bridge FuzzDecodeState:./internal/vda5050 FuzzRobotInbound:./internal/sim FuzzParseMission:./schemas FuzzParseRollout:./schemas
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} ($${t#*:}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) $${t#*:}; \
	done

# chaos: the fault-injection suite (README, "Nothing lost, nothing stuck").
chaos: build bin/temporal services
	./bin/starter chaos $(CHAOS_FLAGS)

bench: build bin/temporal
	./bin/bench
	./bin/bench rollout
	./bin/bench burst
	./bin/bench ingress
	./bin/bench edge
	./bin/bench scale
	$(GO) test -run '^$$' -bench DecodeAndRoute -cpu 1 -benchtime 3s ./workers/bridge/

clean:
	rm -rf bin
