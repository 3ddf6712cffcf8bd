# vmflow entry points; the contract is /work/shared/API.md.
#   make up | down | status   the embedded stack (vmflow/stack.py)
#   make test                 every test tier that exists, each in its own pytest run
#   make test-<tier>          one tier: unit, api, workflows, integration, faults;
#                             api-pg, workflows-pg: the same on PostgreSQL
#   make lint | bench
#   make faults               the whole kill matrix in parallel shards (FAULT_SHARDS=2)
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest
TIERS := unit api api-pg workflows workflows-pg storage integration multihost faults
PYTEST_ARGS ?=

.PHONY: deps up down status test lint fmt-check bench bench-scheduler bench-migrate bench-concurrent soak faults

# Debian packages, uv and the venv; only what is missing, fast when done
deps:
	vmflow/setup/install-deps.sh

up: deps
	$(PY) -m vmflow.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m vmflow.stack down; fi

status:
	$(PY) -m vmflow.stack status

# Every tier, stage after stage (tests/run_tiers.sh): the chains of a stage (tiers
# joined by commas, run in turn) run at the same time. The tiers with no guests are
# CPU-bound (about one core) and share one chain beside workflows and workflows-pg,
# which mostly wait on boots, timers and heartbeats (about a quarter of a core each);
# storage stays alone (it masks the machine's rpcbind socket); multihost, faults and
# integration each wait on guests under TCG most of the time (together a load of
# about 2), so the three run side by side: 24.5 min against 55 one after the other.
# TEST_BUDGET (s) bounds the whole run; a tier cut short prints what failed so far.
STAGES ?= workflows unit,api,api-pg workflows-pg; storage; multihost faults integration
TEST_BUDGET ?= 4500
DURATIONS ?= --durations=15
test: deps
	@TIERS="$(TIERS)" STAGES="$(STAGES)" TEST_BUDGET=$(TEST_BUDGET) PYTEST=$(PYTEST) \
	  PYTEST_ARGS="$(PYTEST_ARGS)" DURATIONS="$(DURATIONS)" tests/run_tiers.sh

# test-api-pg, test-workflows-pg: a tier on PostgreSQL
test-%-pg: deps
	VMFLOW_TEST_DATABASE=postgresql $(PYTEST) $(PYTEST_ARGS) tests/$*

test-%: deps
	$(PYTEST) $(PYTEST_ARGS) tests/$*

# every boundary of every covered workflow type (tests/faults/test_matrix.py, and on the
# two-host bed tests/multihost/test_kill_matrix.py), each shard
# on its own stack; then bench/results/faults.json and docs/faults.md (bench/faults_table.py)
FAULT_SHARDS ?= 2
# FAULT_MATRIX=slice: what make test runs, with its results written as well
FAULT_MATRIX ?= full
faults: deps
	@out=$$(mktemp -d /var/tmp/vmflow-faults.XXXXXX); start=$$(date +%s); pids=""; \
	for i in $$(seq 0 $$(( $(FAULT_SHARDS) - 1 ))); do \
	  VMFLOW_FAULT_MATRIX=$(FAULT_MATRIX) VMFLOW_FAULT_SHARD=$$i/$(FAULT_SHARDS) \
	    VMFLOW_FAULT_RESULTS=$$out/shard-$$i.jsonl \
	    $(PYTEST) $(PYTEST_ARGS) -q -s tests/faults/test_matrix.py tests/multihost/test_kill_matrix.py \
	    >$$out/shard-$$i.log 2>&1 & \
	  pids="$$pids $$!"; \
	done; \
	rc=0; for p in $$pids; do wait $$p || rc=1; done; \
	touch $$out/shard-0.jsonl; \
	$(PY) bench/faults_table.py --wall-s $$(( $$(date +%s) - start )) $$out/shard-*.jsonl || rc=1; \
	echo "shard logs: $$out"; exit $$rc

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy vmflow api activities workflows workers

# not part of lint: parts of the tree are hand-formatted
fmt-check:
	.venv/bin/ruff format --check .

bench: deps bench-scheduler bench-migrate
	$(PY) bench/launch.py
	$(PY) bench/snapshot.py

# 1000 synthetic hosts, 50 placements at once, SQLite and PostgreSQL (no guests)
bench-scheduler: deps
	$(PY) bench/scheduler.py

# a private two-host bed: live migration against direct libvirt, cold migrate, shelve
bench-migrate: deps
	$(PY) bench/migrate.py

# N launches, snapshots and a mixed load at once against direct libvirt / qemu-img, on a
# private stack (CONCURRENT_ARGS="--ns 1,5"; N=20 under TCG takes a long while)
CONCURRENT_ARGS ?=
bench-concurrent: deps
	$(PY) bench/concurrency.py $(CONCURRENT_ARGS)

# chaos soak on a private two-host stack with storage: random operations while workers,
# Temporal and libvirtd are killed; then the invariants (SOAK_ARGS="--duration 240 ...")
SOAK_ARGS ?=
soak: deps
	$(PY) bench/soak.py $(SOAK_ARGS)
