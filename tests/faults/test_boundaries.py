"""Boundaries come from a workflow's own history: a ShelveInstance run recorded on the
fault tier's stack (VMFLOW_FAULT_HISTORIES, tests/faults/test_matrix.py) gives, in the
order they ran, two moments per activity and the worker kind from its task queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.faults.boundaries import Boundary, derive, of_recorded, worker_kind
from tests.faults.matrix import select

RECORDED = Path(__file__).parent / "data" / "shelve-history.json"


def shelve() -> list[Boundary]:
    history = WorkflowHistory.from_json("shelve", RECORDED.read_text())
    return asyncio.run(derive(history))


def test_ordered_boundaries_of_a_recorded_shelve() -> None:
    got = shelve()
    assert len(got) == 40  # 20 activities, before and after each
    assert [b.when for b in got[:4]] == ["before", "after", "before", "after"]
    firsts = [(b.activity, b.kind) for b in got if b.when == "before"][:8]
    assert firsts == [
        ("control.begin_action", "control"), ("host.shutdown", "hypervisor"),
        ("control.shelve_image", "control"), ("control.snapshot_begin", "control"),
        ("control.update_instance", "control"), ("host.snapshot_disk", "hypervisor"),
        ("control.update_instance", "control"), ("host.upload_snapshot", "hypervisor"),
    ]
    assert {b.workflow_type for b in got} == {"ShelveInstance"}
    # update_instance runs four times: its specs name the activity id as well
    updates = [b for b in got if b.activity == "control.update_instance"]
    assert len(updates) == 8 and all(b.repeated for b in updates)
    assert updates[0].spec() == {"workflow_type": "ShelveInstance",
                                 "activity": "control.update_instance", "when": "before",
                                 "attempt": 1, "activity_id": "5"}
    assert "activity_id" not in got[2].spec()
    assert len({b.name for b in got}) == len(got)  # every boundary has its own name


def test_the_slice_takes_the_freeze_and_shards_split_everything() -> None:
    got = shelve()
    [picked] = select(got, "slice", (0, 1))  # ShelveInstance: no control kill in the slice
    assert (picked.activity, picked.when) == ("host.snapshot_disk", "after")
    shards = [select(got, "full", (i, 3)) for i in range(3)]
    assert sorted(b.name for s in shards for b in s) == sorted(b.name for b in got)


def test_worker_kind_of_each_queue() -> None:
    assert [worker_kind(q) for q in ("control", "hv.h1", "storage.s1")] == [
        "control", "hypervisor", "storage"]
    with pytest.raises(ValueError):
        worker_kind("elsewhere")


def test_recorded_boundaries_take_children_from_their_own_recording() -> None:
    """The slice reads boundaries from tests/histories (test_matrix.boundaries_of): a
    rescue's AutoUnrescue child is spliced in from AutoUnrescue's recording; a type with
    only a failed run recorded has none (its case runs clean first)."""
    histories = Path(__file__).parents[1] / "histories"
    got = asyncio.run(of_recorded(histories, "RescueInstance"))
    assert got is not None
    assert [b.workflow_type for b in got[:8]] == ["RescueInstance"] * 8
    assert {b.workflow_type for b in got[8:]} == {"AutoUnrescue"}
    assert [(b.activity, b.kind) for b in select(got, "slice", (0, 1))] == [
        ("host.fetch_image", "hypervisor")]
    assert asyncio.run(of_recorded(histories, "ShrinkShare")) is None


def test_the_types_the_slice_reads_from_recordings_have_one() -> None:
    from tests.faults.cases import BY_TYPE
    from tests.faults.test_matrix import FROM_RECORDING, RECORDED

    for wf_type in sorted(FROM_RECORDING):
        assert wf_type in BY_TYPE, wf_type
        got = asyncio.run(of_recorded(RECORDED, wf_type))
        assert got and select(got, "slice", (0, 1)), wf_type
