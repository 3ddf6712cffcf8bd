"""Replay: every history recorded from the test runs (tests/histories, written with
VMFLOW_RECORD_HISTORIES, docs/workflow-changes.md) replays against today's workflow code
without nondeterminism; every workflow type has a history; every `workflow.patched`
id has a history of one workflow type that took the patch and one that did not."""

from __future__ import annotations

import ast
import base64
import gzip
import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.registry import ALL

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests/histories"
FILES = sorted(HISTORIES.glob("*.json.gz"))
PATCH_MARKER = "core_patch"  # sdk-core's marker name for patched/deprecate_patch


def stem(path: Path) -> str:
    return path.name.removesuffix(".json.gz")


def workflow_type(path: Path) -> str:
    """<WorkflowType>[-<variant>].json.gz"""
    return stem(path).split("-", 1)[0]


def text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode()


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{stem(path)}", text(path))


async def failures_of(workflows: list[type], files: list[Path]) -> dict[str, Exception]:
    """Replay `files` with one Replayer (one replay worker for all, not one per file):
    each file's nondeterminism or other replay failure, by name."""
    histories = {stem(p): history(p) for p in files}
    runs = [h.run_id for h in histories.values()]
    assert len(set(runs)) == len(runs), "two histories of one run"

    async def each() -> AsyncIterator[WorkflowHistory]:
        for h in histories.values():
            yield h

    results = await Replayer(workflows=workflows).replay_workflows(
        each(), raise_on_replay_failure=False)
    by_run = results.replay_failures
    return {name: by_run[h.run_id] for name, h in histories.items() if h.run_id in by_run}


@pytest.fixture(scope="module")
async def replay_failures() -> dict[str, Exception]:
    """As the control worker runs them (workers/control.py): every registered workflow,
    the default data converter and sandbox, no interceptors."""
    return await failures_of(ALL, FILES)


@pytest.mark.parametrize("path", FILES, ids=[stem(p) for p in FILES])
def test_history_replays_without_nondeterminism(
        path: Path, replay_failures: dict[str, Exception]) -> None:
    failure = replay_failures.get(stem(path))
    assert failure is None, f"{path.name}: {failure!r}"


def test_every_workflow_type_has_a_history() -> None:
    recorded = {workflow_type(p) for p in FILES}
    missing = sorted(cls.__name__ for cls in ALL if cls.__name__ not in recorded)
    assert not missing, f"no history in tests/histories for {missing}: record one " \
                        "(docs/workflow-changes.md)"


def test_every_history_is_of_a_registered_type() -> None:
    names = {cls.__name__ for cls in ALL}
    assert {workflow_type(p) for p in FILES} <= names


def patch_markers(path: Path) -> set[str]:
    """The patch ids a history recorded (MarkerRecorded events named core_patch)."""
    ids = set()
    for event in json.loads(text(path))["events"]:
        attrs = event.get("markerRecordedEventAttributes")
        if attrs and attrs.get("markerName") == PATCH_MARKER:
            for detail in attrs["details"].values():  # "patch-data": {id, deprecated}
                for payload in detail["payloads"]:
                    ids.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return ids


def patched_ids() -> dict[str, str]:
    """Every `workflow.patched(<id>)` in workflows/: id -> where. The id is a string
    literal or a module-level constant of the module that calls it."""
    found = {}
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "patched"):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found[arg.value] = where
            elif isinstance(arg, ast.Name):
                found[str(getattr(importlib.import_module(module), arg.id))] = where
            else:
                raise AssertionError(f"{where}: patch id must be a literal or a constant")
    return found


def uncovered(patches: dict[str, str], markers: dict[Path, set[str]]) -> list[str]:
    """The patch ids no workflow type has a history with and one without."""
    missing = []
    for patch_id, where in patches.items():
        with_it = {workflow_type(p) for p, ids in markers.items() if patch_id in ids}
        without_it = {workflow_type(p) for p, ids in markers.items() if patch_id not in ids}
        if not with_it & without_it:
            missing.append(f"{patch_id} ({where})")
    return missing


def test_every_patch_has_a_history_before_and_after_it() -> None:
    missing = uncovered(patched_ids(), {p: patch_markers(p) for p in FILES})
    assert not missing, f"patched branches without a history from before and after " \
                        f"them: {missing} (docs/workflow-changes.md)"


def test_the_patch_check_tells_covered_from_not() -> None:
    """The check above can fail. In the recorded baseline (patches collapsed since,
    docs/decisions.md) every launch went through "launch-drive-after-ports", so no
    history shows a launch before it; "guest-services-follow" is only asked for a
    server with NICs, so launches with and without it were recorded."""
    markers = {p: patch_markers(p) for p in FILES}
    assert uncovered({"launch-drive-after-ports": "launch"}, markers) == [
        "launch-drive-after-ports (launch)"]
    assert uncovered({"guest-services-follow": "spawn"}, markers) == []


@workflow.defn(name="RegisterHost", sandboxed=False)
class RegisterHostWithoutSteps:
    """RegisterHost as a careless change would leave it: its activities gone."""

    @workflow.run
    async def run(self, info: object) -> None:
        return None


async def test_a_changed_workflow_fails_its_replay() -> None:
    """The replay above can fail: the same histories against code that dropped its
    steps are nondeterministic."""
    files = [p for p in FILES if workflow_type(p) == "RegisterHost"]
    assert files
    failures = await failures_of([RegisterHostWithoutSteps], files)
    assert sorted(failures) == sorted(stem(p) for p in files)
