# vmflow entry points; the contract is /work/shared/API.md.
#   make up | down | status   the embedded stack (vmflow/stack.py)
#   make test                 every test tier that exists, each in its own pytest run
#   make test-<tier>          one tier: unit, api, workflows, integration, faults
#   make lint | bench
#   make faults               the whole kill matrix in parallel shards (FAULT_SHARDS=2)
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest
TIERS := unit api workflows storage integration multihost faults
PYTEST_ARGS ?=

.PHONY: deps up down status test lint fmt-check bench bench-scheduler bench-migrate soak faults

# Debian packages, uv and the venv; only what is missing, fast when done
deps:
	vmflow/setup/install-deps.sh

up: deps
	$(PY) -m vmflow.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m vmflow.stack down; fi

status:
	$(PY) -m vmflow.stack status

# Run every tier even after a failure, then fail if any did. pytest's 5 means
# "no tests collected" (a tier still empty), which is not a failure.
test: deps
	@failed=""; \
	for t in $(TIERS); do \
	  [ -d tests/$$t ] || continue; \
	  echo "=== tests/$$t"; \
	  rc=0; $(PYTEST) $(PYTEST_ARGS) tests/$$t || rc=$$?; \
	  [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || failed="$$failed $$t(rc=$$rc)"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED tiers:$$failed"; exit 1; fi; \
	echo "all test tiers passed"

test-%: deps
	$(PYTEST) $(PYTEST_ARGS) tests/$*

# every boundary of every covered workflow type (tests/faults/test_matrix.py), each shard
# on its own stack; then bench/results/faults.json and docs/faults.md (bench/faults_table.py)
FAULT_SHARDS ?= 2
faults: deps
	@out=$$(mktemp -d /var/tmp/vmflow-faults.XXXXXX); start=$$(date +%s); pids=""; \
	for i in $$(seq 0 $$(( $(FAULT_SHARDS) - 1 ))); do \
	  VMFLOW_FAULT_MATRIX=full VMFLOW_FAULT_SHARD=$$i/$(FAULT_SHARDS) \
	    VMFLOW_FAULT_RESULTS=$$out/shard-$$i.jsonl \
	    $(PYTEST) $(PYTEST_ARGS) -q -s tests/faults/test_matrix.py >$$out/shard-$$i.log 2>&1 & \
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

# chaos soak on a private two-host stack with storage: random operations while workers,
# Temporal and libvirtd are killed; then the invariants (SOAK_ARGS="--duration 240 ...")
SOAK_ARGS ?=
soak: deps
	$(PY) bench/soak.py $(SOAK_ARGS)
