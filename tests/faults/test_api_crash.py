"""kill -9 of the API in the middle of an upload, then what `make up` does (restart
it): the image is left in saving with its part file, and nothing in the API will
ever move it. The ledger reconciler's image store check puts it back to queued and
removes the part file; the owner uploads again and the image becomes active."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from vmflow import stack
from vmflow.contracts.reconcile import ReconcileLedgerRequest, ReconcileLedgerResult
from vmflow.names import CONTROL_QUEUE
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest

MIB = 1 << 20
SENT = 5 * MIB  # more than the API gathers before its first write (4 MiB)


def image_of(api: httpx.Client, image_id: str) -> dict[str, object]:
    r = api.get(f"/v1/images/{image_id}")
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def stalled_upload(s: Settings, image_id: str, token: str
                   ) -> tuple[threading.Thread, threading.Event]:
    """A PUT that sends SENT bytes and then waits (as a client on a slow link would)
    until the event is set."""
    stop = threading.Event()

    def body() -> Iterator[bytes]:
        for _ in range(SENT // MIB):
            yield b"\0" * MIB
        stop.wait(120)

    def put() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the API dies under it
            httpx.put(f"{s.base_url}/v1/images/{image_id}/file", content=body(), timeout=150,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/octet-stream"})

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    return thread, stop


async def reconcile(s: Settings) -> ReconcileLedgerResult:
    """A full run now, with no grace (the schedule's has VMFLOW_RECONCILE_GRACE)."""
    client = await connect(s)
    result: ReconcileLedgerResult = await client.execute_workflow(
        "ReconcileLedger", ReconcileLedgerRequest([], 1.0),
        id=f"reconcile-ledger-test-{uuid.uuid4().hex[:8]}", task_queue=CONTROL_QUEUE,
        result_type=ReconcileLedgerResult)
    return result


def test_kill_9_mid_upload_is_mended_by_the_reconciler(it_settings: Settings,
                                                       api: httpx.Client) -> None:
    s = it_settings
    r = api.post("/v1/images", json={"name": "crash-upload", "disk_format": "raw",
                                     "container_format": "bare"})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    part = s.image_store / f"{image_id}.part"
    upload, stop = stalled_upload(s, image_id, s.admin_token_file.read_text().strip())
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size > 0):
        assert time.monotonic() < deadline, image_of(api, image_id)
        time.sleep(0.1)
    assert image_of(api, image_id)["status"] == "saving"

    stack.kill_component(s, "api")
    stop.set()
    upload.join(30)
    stack.up(s)  # `make up`: restarts only what died
    assert image_of(api, image_id)["status"] == "saving"  # nothing moves it by itself
    assert part.exists()

    time.sleep(2)  # older than the run's grace of 1 s
    result = asyncio.run(reconcile(s))
    assert result.failed == 0, result.details
    assert f"image store: image {image_id}: its upload was interrupted: back to queued" \
        in result.details
    assert image_of(api, image_id)["status"] == "queued"
    assert not part.exists()

    data = b"\0" * MIB  # the owner uploads again
    r = api.put(f"/v1/images/{image_id}/file", content=data,
                headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert image_of(api, image_id)["status"] == "active"
    assert api.delete(f"/v1/images/{image_id}").status_code == 204
