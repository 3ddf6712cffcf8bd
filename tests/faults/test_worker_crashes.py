"""kill -9 of the hypervisor worker in the middle of an operation, then what `make up`
does (restart the dead component): the operation completes or compensates, and the
database says what the hypervisor says."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import (
    CLEAN,
    action,
    create_server,
    delete_server,
    ledger_audit,
    remains,
    wait_operation,
)
from tests.integration.guest import EXPECTED_POWER, power
from vmflow import stack
from vmflow.settings import Settings

pytestmark = pytest.mark.guest


def wait_step(api: httpx.Client, op_id: str, steps: set[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (op := api.get(f"/v1/operations/{op_id}").json())["step"] not in steps:
        assert op["status"] == "running", op
        assert time.monotonic() < deadline, op
        time.sleep(0.05)


def crash_hypervisor_worker(s: Settings) -> None:
    stack.kill_component(s, "hypervisor")
    assert stack.pid_of(s, "hypervisor") is None
    stack.up(s)  # `make up`: restarts only what died


def test_kill_9_mid_launch(it_settings: Settings, api: httpx.Client) -> None:
    server_id, op_id = create_server(api, "crash-launch")
    wait_step(api, op_id, {"starting", "waiting for the guest agent"})
    crash_hypervisor_worker(it_settings)
    op = wait_operation(api, op_id)
    assert op["status"] in ("succeeded", "compensated"), op
    assert ledger_audit(it_settings) == {"domains": [], "dirs": []}
    server = api.get(f"/v1/servers/{server_id}").json()
    expected = "ACTIVE" if op["status"] == "succeeded" else "ERROR"
    assert server["status"] == expected
    if expected == "ACTIVE":
        assert power(server_id) == "running"
    else:
        assert remains(it_settings, server_id) == CLEAN
    assert delete_server(api, server_id)["status"] == "succeeded"
    assert remains(it_settings, server_id) == CLEAN


CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "stop": ({"os-stop": None}, {"shutting down"}),
    "suspend": ({"suspend": None}, {"saving memory to disk"}),
    "rescue": ({"rescue": {}}, {"booting the rescue image", "waiting for the guest agent"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kill_9_mid_action(name: str, it_settings: Settings, api: httpx.Client) -> None:
    server_id, op_id = create_server(api, f"crash-{name}")
    assert wait_operation(api, op_id)["status"] == "succeeded"
    body, steps = CASES[name]
    r = action(api, server_id, body)
    assert r.status_code == 202, r.text
    op_id = r.json()["operation"]["id"]
    wait_step(api, op_id, steps)
    crash_hypervisor_worker(it_settings)
    op = wait_operation(api, op_id)
    assert op["status"] in ("succeeded", "compensated"), op
    server = api.get(f"/v1/servers/{server_id}").json()
    assert server["task_state"] is None
    assert power(server_id) == EXPECTED_POWER[server["status"]], server
    assert ledger_audit(it_settings) == {"domains": [], "dirs": []}
    assert delete_server(api, server_id)["status"] == "succeeded"
    assert remains(it_settings, server_id) == CLEAN
