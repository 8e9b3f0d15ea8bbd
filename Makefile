# trading-api: build, run a local stack, test.
#   make build   release build (.build/release/trading-api)
#   make run     dependencies + release build + stack in .run (http://127.0.0.1:8080), the demo
#                writer moving the demo user's prices, and the dashboard's link with a demo token
#   make stop    stop the .run stack (data kept in .run/pgdata)
#   make status  / make logs   state and log tails of the .run stack
#   make test    scripts/test.sh: release build, test stack in .test-run (port 18080), swift test, pytest
#   make deb     Debian package dist/trading-api_<version>_<arch>.deb (packaging/build-deb.sh)
#   make clean   stop both stacks, remove .build, .run, .test-run (databases included) and dist
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

export PATH := $(PATH):/opt/swift/usr/bin

RUN_DIR := .run
DEMO_USER := 00000000-0000-4000-8000-000000000001

.PHONY: build run stop status logs test clean deps deb

deps:
	scripts/install-deps.sh

build:
	swift build -c release

DEMO_DATA ?= 1
DEMO_WRITER ?= $(if $(filter 0,$(DEMO_DATA)),0,1)

run: deps build
	RUN_DIR=$(RUN_DIR) TRADING_API_BIN=.build/release/trading-api DEMO_DATA=$(DEMO_DATA) \
		DEMO_WRITER=$(DEMO_WRITER) scripts/stack.sh up
	@set -a; . $(RUN_DIR)/stack.env; set +a; \
	token=$$(python3 scripts/jwt_token.py $(DEMO_USER) --ttl 86400); \
	echo; \
	echo "Stack up: $$BASE_URL (logs: $(RUN_DIR)/logs, stop: make stop). Demo user $(DEMO_USER), token valid 24 h:"; \
	echo; \
	echo "  Dashboard: $$BASE_URL/  (sign in by pasting the token below)"; \
	echo "  Token:     $$token"; \
	echo; \
	echo "curl -H \"Authorization: Bearer $$token\" $$BASE_URL/api/v1/reconciliation/status"

stop:
	RUN_DIR=$(RUN_DIR) scripts/stack.sh down

status:
	@RUN_DIR=$(RUN_DIR) scripts/stack.sh status

logs:
	@RUN_DIR=$(RUN_DIR) scripts/stack.sh logs

test:
	scripts/test.sh

deb: deps
	packaging/build-deb.sh

clean:
	-RUN_DIR=.test-run scripts/stack.sh down
	-RUN_DIR=$(RUN_DIR) scripts/stack.sh down
	rm -rf .build .run .test-run dist

# ---- fault suite, cluster, fuzzing (Tests/Faults/README.md, docs/SCALING.md, fuzz/run.sh) -----
.PHONY: test-faults test-cluster fuzz
test-faults:
	TEST_SUITES=faults scripts/test.sh

test-cluster:
	TEST_SUITES=cluster scripts/test.sh

FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# ---- benchmark (bench/README.md) -------------------------------------------------------------
#   make bench            wrk/ab suite against its own stack in .bench-run (HTTP 28180), about
#                         7 minutes; writes bench/results/<timestamp>.{md,json,png}
#   make bench SOAK=300   instead: mixed workload at 100 connections for 300 s, worker RSS and
#                         p99 per 10-s window
# DURATION, WARMUP, CONNS, WORKERS, ... : see bench/run.sh.
SOAK ?= 0

.PHONY: bench bench-cluster
bench: deps
	SOAK=$(SOAK) bench/run.sh

#   make bench-cluster    the hosts of docs/SCALING.md (scripts/cluster.sh), wrk through the web host
#                         with both worker hosts, then one: CPU µs per request of each host
#                         (bench/cluster.py); writes bench/results/cluster-<timestamp>.md
bench-cluster: deps build
	scripts/cluster.sh up
	.venv/bin/python bench/cluster.py; rc=$$?; scripts/cluster.sh down; exit $$rc
