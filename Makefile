# fleetflow — see README.md. Main targets:
#   make demo   local stack + virtual fleet, runs testdata/missions, exits 0 when all completed
#   make test   vet, workflowcheck, unit, integration and end-to-end tests
#   make dev    the local stack, staying up for the CLI and the Web UI
#   make bench  benchmarks (not tests)
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1

.PHONY: all build demo dev test vet workflowcheck services bench clean

all: build

bin/temporal:
	@echo "building the pinned Temporal CLI $(TEMPORAL_CLI_VERSION) into ./bin (first time only, a few minutes)"
	GOBIN=$(BIN) GOFLAGS=-mod=mod $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

bin/workflowcheck:
	GOBIN=$(BIN) GOFLAGS=-mod=mod $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0

build:
	$(GO) build -o bin/starter ./starter
	$(GO) build -o bin/workers ./workers

demo: build bin/temporal
	./bin/starter demo

dev: build bin/temporal
	./bin/starter dev

services:
	./scripts/ensure-services.sh

vet:
	$(GO) vet ./...

workflowcheck: bin/workflowcheck
	./bin/workflowcheck ./workflows/...

test: build bin/temporal services vet workflowcheck
	$(GO) test -count=1 -timeout 20m ./...

bench: build bin/temporal
	./bin/starter bench
	./bin/starter bench rollout
	$(GO) test -run '^$$' -bench DecodeAndRoute -cpu 1 -benchtime 3s ./workers/bridge/

clean:
	rm -rf bin
