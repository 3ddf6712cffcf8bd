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

# Run every tier even after a failure, then fail if any did. pytest's 5 means
# "no tests collected" (a tier still empty), which is not a failure. A tier named
# <dir>-pg runs tests/<dir> on a PostgreSQL server of its own (VMFLOW_TEST_DATABASE=
# postgresql; tests/conftest.py starts it), the others on SQLite. The tiers in
# ALONGSIDE run in the background while the first guest tiers run (ALONGSIDE_OF): each
# word is a chain of tiers (joined by commas) run one after the other, the chains at
# the same time. The tiers with no guests are CPU-bound (about one core) and share one
# chain; workflows-pg, like workflows mostly waiting on boots, timers and heartbeats
# (measured 24% of a core), is a chain of its own; so a 2-core machine does all at once.
# Their logs are printed whole once ALONGSIDE_OF ended. storage stays in line: it masks
# the machine's rpcbind socket. Each tier's log is kept in TEST_LOGS; a table of every
# tier's exit status and seconds ends the output. ALONGSIDE= runs all in line.
ALONGSIDE ?= unit,api,api-pg workflows-pg
ALONGSIDE_OF ?= workflows
DURATIONS ?= --durations=15
test: deps
	@logs=$${TEST_LOGS:-$$(mktemp -d /var/tmp/vmflow-test.XXXXXX)}; mkdir -p $$logs; rm -f $$logs/*.rc; \
	db_of() { case $$1 in *-pg) echo postgresql ;; *) echo sqlite ;; esac; }; \
	tier() { \
	  local t=$$1 start=$$SECONDS rc=0; \
	  VMFLOW_TEST_DATABASE=$$(db_of $$t) $(PYTEST) $(PYTEST_ARGS) $(DURATIONS) tests/$${t%-pg} \
	    >$$logs/$$t.log 2>&1 || rc=$$?; \
	  echo "$$rc $$((SECONDS - start))" >$$logs/$$t.rc; \
	}; \
	inline() { \
	  local t=$$1 start=$$SECONDS; \
	  echo "=== tests/$${t%-pg} on $$(db_of $$t)"; \
	  VMFLOW_TEST_DATABASE=$$(db_of $$t) $(PYTEST) $(PYTEST_ARGS) $(DURATIONS) tests/$${t%-pg} \
	    2>&1 | tee $$logs/$$t.log; \
	  echo "$${PIPESTATUS[0]} $$((SECONDS - start))" >$$logs/$$t.rc; \
	}; \
	bgs=""; aside=""; \
	for chain in $(ALONGSIDE); do \
	  run=""; \
	  for t in $${chain//,/ }; do \
	    case " $(TIERS) " in *" $$t "*) [ -d tests/$${t%-pg} ] && run="$$run $$t" ;; esac; \
	  done; \
	  [ -n "$$run" ] || continue; aside="$$aside$$run"; \
	  ( for t in $$run; do tier $$t; done ) & bgs="$$bgs $$!"; \
	done; \
	[ -z "$$aside" ] || echo "=== in the background, alongside tests/$(ALONGSIDE_OF):$$aside"; \
	flush() { \
	  [ -n "$$bgs" ] || return 0; wait $$bgs; bgs=""; \
	  for t in $$aside; do echo "=== tests/$${t%-pg} on $$(db_of $$t) (ran alongside)"; cat $$logs/$$t.log; done; \
	}; \
	for t in $(TIERS); do \
	  [ -d tests/$${t%-pg} ] || continue; \
	  case " $$aside " in *" $$t "*) continue ;; esac; \
	  inline $$t; \
	  [ "$$t" != "$(ALONGSIDE_OF)" ] || flush; \
	done; \
	flush; \
	failed=""; echo "=== tiers (exit status, seconds; logs in $$logs)"; \
	for t in $(TIERS); do \
	  [ -f $$logs/$$t.rc ] || continue; read -r rc secs <$$logs/$$t.rc; \
	  printf '%-12s %3s %6s\n' $$t $$rc $$secs; \
	  [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || failed="$$failed $$t(rc=$$rc)"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED tiers:$$failed"; exit 1; fi; \
	echo "all test tiers passed"

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
