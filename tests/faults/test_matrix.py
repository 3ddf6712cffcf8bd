"""The kill matrix: for each workflow type, a clean run gives its activity boundaries
(tests/faults/boundaries.py; the slice reads them from the type's recorded run in
tests/histories instead, where that run took the case's path); then at each selected
boundary the worker that runs that activity dies (workers/fault_point.py), `make up`
restarts it, and the operation must end succeeded or compensated with the DB, libvirt,
the storage host and the ledger in agreement. VMFLOW_FAULT_MATRIX=slice (default: the
riskiest boundary of each worker kind per type) or full; VMFLOW_FAULT_SHARD=i/n runs one
shard of full."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.background_cases import unarmed
from tests.faults.boundaries import Boundary, of_recorded, of_workflow
from tests.faults.cases import CASES, Case, Pool
from tests.faults.matrix import drop_made, record, run, select, shard_of
from tests.integration.conftest import wait_operation
from tests.integration.test_shares import wait_rules
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest

MODE = os.environ.get("VMFLOW_FAULT_MATRIX", "slice")
SHARD = shard_of(os.environ.get("VMFLOW_FAULT_SHARD"))
HISTORIES = os.environ.get("VMFLOW_FAULT_HISTORIES")  # a directory: keep clean histories
RECORDED = Path(__file__).resolve().parents[1] / "histories"  # replayed by the unit tier
# the types whose slice is read from their recording in tests/histories (the richest run
# of each type) instead of a clean run: checked to pick the same boundaries as the clean
# runs of the slice of 2026-12-07 (bench/results/faults.json). Not DeleteShare (recorded
# with a snapshot to delete, the case's share has none), RebootInstance (recorded hard,
# the case reboots soft), ShrinkShare (only a failed run recorded), nor a case added
# since: those run clean first (a boundary the case never reaches would not fire).
FROM_RECORDING = frozenset({
    "LaunchInstance", "DeleteInstance", "StopInstance", "StartInstance", "PauseInstance",
    "UnpauseInstance", "SuspendInstance", "ResumeInstance", "RescueInstance",
    "UnrescueInstance", "RebuildInstance", "SnapshotInstance", "ShelveInstance",
    "UnshelveInstance", "CreateShare", "ExtendShare", "SyncShareAccess",
    "CreateShareSnapshot", "DeleteShareSnapshot"})


@pytest.fixture(scope="module")
def pool(api: httpx.Client, it_settings: Settings) -> Iterator[Pool]:
    p = Pool(api, it_settings)
    yield p
    p.close()


def clean_run(s: Settings, api: httpx.Client, pool: Pool, case: Case) -> list[Boundary]:
    """Run the operation once with no fault and read its boundaries from its history."""
    started = case.start(pool, unarmed)
    if started.wait is not None:  # a background workflow: no operation row tells
        assert started.wait() == "succeeded", started
        workflow_id, run_id = started.workflow_id, ""
    elif started.op_id is not None:
        op = wait_operation(api, started.op_id, timeout=600)
        assert op["status"] == "succeeded", op
        workflow_id, run_id = op["workflow_id"], op["run_id"] or ""
    else:
        wait_rules(api, started.resource, timeout=180)
        workflow_id, run_id = started.workflow_id, ""

    async def derive() -> list[Boundary]:
        client = await connect(s)
        if HISTORIES:  # recorded for tests/faults/test_boundaries.py
            handle = client.get_workflow_handle(workflow_id, run_id=run_id or None)
            history = await handle.fetch_history()
            Path(HISTORIES, f"{case.workflow_type}.json").write_text(history.to_json())
        return await of_workflow(client, workflow_id, run_id)

    boundaries = asyncio.run(derive())  # before drop_made: a share's next run shares its id
    drop_made(api, case, started.resource)
    assert boundaries, f"{case.workflow_type} ran no activity"
    assert {b.workflow_type for b in boundaries} >= {case.workflow_type}
    return boundaries


def boundaries_of(s: Settings, api: httpx.Client, pool: Pool, case: Case
                  ) -> tuple[list[Boundary], str]:
    """The slice's from the type's recorded run where it takes the case's path (saves a
    clean run per type); full mode's, and VMFLOW_FAULT_HISTORIES', from a clean run."""
    if MODE == "slice" and not HISTORIES and case.workflow_type in FROM_RECORDING:
        recorded = asyncio.run(of_recorded(RECORDED, case.workflow_type))
        if recorded:
            return recorded, f"tests/histories/{case.workflow_type}.json.gz"
    return clean_run(s, api, pool, case), "a clean run"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.workflow_type)
def test_kill_at_each_boundary(case: Case, it_settings: Settings, api: httpx.Client,
                               pool: Pool) -> None:
    boundaries, source = boundaries_of(it_settings, api, pool, case)
    chosen = select(boundaries, MODE, SHARD)
    failures = []
    for b in chosen:
        result = {**run(it_settings, api, pool, case, b), "mode": MODE}
        record(result)
        print(f"\n{b.name} [{b.kind}]: fired={result['fired']} -> {result['outcome']} "
              f"in {result['seconds']} s {result['violations'] or ''}")
        if not result["fired"] or result["violations"]:
            # not fired from a recording: the case left its path (FROM_RECORDING)
            failures.append({**result, "boundaries_from": source})
    assert not failures, failures
