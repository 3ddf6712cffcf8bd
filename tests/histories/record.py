"""Recording workflow histories from a test run, for the replay test
(tests/unit/test_replay.py).

With VMFLOW_RECORD_HISTORIES=<dir> set, a fixture that owns a Temporal server calls
`record(address)` before stopping it: every closed workflow is listed and, per
workflow type and ending, one history is written to <dir>/<Type>[-<ending>].json.gz
(completed: no suffix; failed, e.g. compensated; cancelled): WorkflowHistory.to_json,
gzipped (a launch is 100 kB of JSON, 10 kB gzipped). Among a type's runs the one with
the most events under MAX_BYTES is kept: it takes the most branches. A file
already in <dir> is never overwritten: recorded histories are the baseline old code
left behind, and a new recording only fills gaps (docs/workflow-changes.md)."""

from __future__ import annotations

import asyncio
import gzip
import os
import threading
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory

ENV = "VMFLOW_RECORD_HISTORIES"
MAX_BYTES = 100_000  # gzipped: a history bigger than this would bloat the repository
CANDIDATES = 12  # runs fetched per type and ending: enough to find a rich one, bounded
ENDINGS = {WorkflowExecutionStatus.COMPLETED: "",
           WorkflowExecutionStatus.FAILED: "-failed",
           WorkflowExecutionStatus.CANCELED: "-cancelled"}


def record(address: str, namespace: str = "default") -> None:
    """Write the server's closed histories if VMFLOW_RECORD_HISTORIES is set. Runs in a
    thread of its own: the caller may be inside a running event loop. Never fails the
    run it records (a recording is a by-product)."""
    target = os.environ.get(ENV)
    if not target:
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(record_into(Path(target), address, namespace))
        except Exception as err:
            errors.append(err)

    thread = threading.Thread(target=run, name="record-histories")
    thread.start()
    thread.join(300)
    if errors or thread.is_alive():
        print(f"\nrecording histories from {address} failed: {errors or 'timed out'}")


async def record_into(target: Path, address: str, namespace: str) -> list[Path]:
    client = await Client.connect(address, namespace=namespace)
    runs: dict[str, list[tuple[str, str]]] = {}
    async for wf in client.list_workflows("ExecutionStatus != 'Running'"):
        ending = ENDINGS.get(wf.status) if wf.status is not None else None
        if ending is None or wf.workflow_type.startswith("temporal-sys"):
            continue
        name = f"{wf.workflow_type}{ending}.json.gz"
        if len(runs.setdefault(name, [])) < CANDIDATES:
            runs[name].append((wf.id, wf.run_id or ""))
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, ids in sorted(runs.items()):
        path = target / name
        if path.exists():
            continue
        best: tuple[int, bytes] | None = None
        for wf_id, run_id in ids:
            history: WorkflowHistory = await client.get_workflow_handle(
                wf_id, run_id=run_id or None).fetch_history()
            data = gzip.compress(history.to_json().encode(), mtime=0)
            if len(data) <= MAX_BYTES and (best is None or len(history.events) > best[0]):
                best = (len(history.events), data)
        if best is not None:
            path.write_bytes(best[1])
            written.append(path)
    return written
