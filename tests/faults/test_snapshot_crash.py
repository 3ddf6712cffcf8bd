"""kill -9 of the hypervisor worker while a snapshot holds the guest frozen (this
stack holds every freeze HOLD_FROZEN_S, see conftest): the thaw guard armed before
the freeze thaws the guest within THAW_DEADLINE_S, with no worker alive, and the
operation still ends in a defined state once `make up` restarted the worker."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import THAW_DEADLINE_S
from tests.faults.test_worker_crashes import crash_hypervisor_worker
from tests.integration.conftest import (
    CLEAN,
    action,
    create_server,
    delete_server,
    ledger_audit,
    remains,
    wait_operation,
)
from tests.integration.guest import power
from tests.integration.test_snapshot import freeze_status, image
from vmflow.settings import Settings

pytestmark = pytest.mark.guest


def guards_of(instance_id: str) -> list[int]:
    """Thaw guard processes of an instance still alive."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"activities.hypervisor.thaw_guard" in cmd and instance_id.encode() in cmd:
            pids.append(int(proc.name))
    return pids


def test_kill_9_while_frozen_thaws_by_the_deadline(it_settings: Settings,
                                                   api: httpx.Client) -> None:
    sid, op_id = create_server(api, "crash-snap")
    assert wait_operation(api, op_id)["status"] == "succeeded"
    r = action(api, sid, {"createImage": {"name": "crash-snap"}})
    assert r.status_code == 202, r.text
    op_id, image_id = r.json()["operation"]["id"], r.json()["image_id"]

    deadline = time.monotonic() + 120
    while freeze_status(sid) != "frozen":
        assert time.monotonic() < deadline, "the snapshot never froze the guest"
        time.sleep(0.05)
    frozen_at = time.monotonic()
    assert guards_of(sid), "frozen without a thaw guard"
    crash_hypervisor_worker(it_settings)  # kill -9, then make up restarts it

    while freeze_status(sid) != "thawed":
        assert time.monotonic() - frozen_at < THAW_DEADLINE_S + 3, "still frozen"
        time.sleep(0.1)
    print(f"\nthawed {time.monotonic() - frozen_at:.1f} s after the freeze was seen "
          f"(deadline {THAW_DEADLINE_S} s)")

    op = wait_operation(api, op_id, timeout=300)
    img = image(api, image_id)
    print(f"operation {op['status']}: {op['last_error']}; image {img['status']} "
          f"{img['properties'].get('consistency') or img['fault']}")
    if op["status"] == "succeeded":  # the retry made a copy of its own
        assert img["status"] == "active"
        assert img["properties"]["consistency"] in ("quiesced", "crash-consistent")
    else:
        assert op["status"] in ("compensated", "failed"), op
        assert img["status"] == "error" and img["fault"], img
    srv = api.get(f"/v1/servers/{sid}").json()
    assert (srv["status"], srv["task_state"], power(sid)) == ("ACTIVE", None, "running")
    assert freeze_status(sid) == "thawed"
    assert guards_of(sid) == []  # the retry ended the dead attempt's guard, then its own
    assert not list((it_settings.host_dir() / "instances" / sid).glob("snap-*"))
    assert ledger_audit(it_settings) == {"domains": [], "dirs": []}
    assert delete_server(api, sid)["status"] == "succeeded"
    assert remains(it_settings, sid) == CLEAN
