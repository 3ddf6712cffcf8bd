"""The kill matrix on the two-host bed: the workflow types that need two hosts or a
network (tests/faults/multihost_cases.py). As tests/faults/test_matrix.py: a clean run
gives each type's boundaries; at each selected one the worker that runs the activity
dies (the destination host's, the source's, control), `make up` restarts it, and the
operation must end succeeded or compensated with both hosts clean
(tests/faults/multihost_checks.py). VMFLOW_FAULT_MATRIX=slice|full,
VMFLOW_FAULT_SHARD=i/n, results appended to VMFLOW_FAULT_RESULTS."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.boundaries import Boundary, of_workflow
from tests.faults.cases import Case, Pool, Started
from tests.faults.matrix import record, run, select, shard_of
from tests.faults.multihost_cases import CASES, MhPool
from tests.faults.multihost_checks import violations
from tests.integration.conftest import wait_operation
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest

MODE = os.environ.get("VMFLOW_FAULT_MATRIX", "slice")
SHARD = shard_of(os.environ.get("VMFLOW_FAULT_SHARD"))
# the slice kills the control worker in this type (one boundary) besides the hosts'
CONTROL_IN_SLICE = {"ConfirmResize"}


@pytest.fixture(scope="module")
def pool(bed: Settings, api: httpx.Client, hosts: list[str]) -> Iterator[MhPool]:
    p = MhPool(api, bed, hosts)
    yield p
    p.close()


def checks(s: Settings, api: httpx.Client, pool: Pool, case: Case, started: Started,
           status: str) -> list[str]:
    assert isinstance(pool, MhPool)
    return violations(s, api, pool, case, started, status)


def clean_run(s: Settings, api: httpx.Client, pool: MhPool, case: Case) -> list[Boundary]:
    """The operation once with no fault; its boundaries from its history."""
    started = case.start(pool, lambda: None)
    if started.op_id is not None:
        op = wait_operation(api, started.op_id, timeout=600)
        assert op["status"] == "succeeded", op
        workflow_id, run_id = op["workflow_id"], op["run_id"] or ""
        if started.wait is not None:
            assert started.wait() == "succeeded"
    else:
        assert started.wait is not None and started.wait() == "succeeded"
        workflow_id, run_id = started.workflow_id, ""

    async def derive() -> list[Boundary]:
        return await of_workflow(await connect(s), workflow_id, run_id)

    boundaries = asyncio.run(derive())
    assert boundaries, f"{case.workflow_type} ran no activity"
    return [b for b in boundaries if b.workflow_type == case.workflow_type] or boundaries


def chosen(case: Case, boundaries: list[Boundary]) -> list[Boundary]:
    picked = select(boundaries, MODE, SHARD)
    if MODE == "slice" and case.workflow_type in CONTROL_IN_SLICE:
        control = select([b for b in boundaries if b.kind == "control"], MODE, SHARD)
        picked += [b for b in control if b not in picked]
    return picked


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.workflow_type)
def test_kill_at_each_boundary(case: Case, bed: Settings, api: httpx.Client,
                               pool: MhPool) -> None:
    t0 = time.monotonic()
    boundaries = clean_run(bed, api, pool, case)
    print(f"\n{case.workflow_type}: {len(boundaries)} boundaries, clean run "
          f"{time.monotonic() - t0:.0f} s")
    failures = []
    for b in chosen(case, boundaries):
        result = {**run(bed, api, pool, case, b, checks=checks), "mode": MODE, "bed": "2 hosts"}
        record(result)
        print(f"{b.name} [{b.kind}]: fired={result['fired']} -> {result['outcome']} "
              f"in {result['seconds']} s {result['violations'] or ''}")
        if not result["fired"] or result["violations"]:
            failures.append(result)
    assert not failures, failures
