"""Integration tests: the whole embedded stack, started by the same launcher as
`make up` on a private home and ports, driving real QEMU guests through the API."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest
from sqlmodel import select

from tests.conftest import bearer, db_session, qemu_home
from tests.histories.record import record as record_histories
from tests.home_cleanup import teardown_home
from tests.integration import guest
from vmflow import hostbed, stack
from vmflow.models import Allocation, Ledger
from vmflow.processes import free_port
from vmflow.settings import Settings

# one prefix per test run, so concurrent runs on one machine never touch each other's guests
PREFIX = f"vmflowit{os.getpid()}-"



@pytest.fixture(scope="session")
def stack_overrides() -> dict[str, Any]:
    """Settings a tier changes on its own stack (the fault tier: snapshot knobs)."""
    return {}


@pytest.fixture(scope="session")
def it_settings(tiny_guest: Path, stack_overrides: dict[str, Any]) -> Iterator[Settings]:
    home = qemu_home("it")
    s = Settings(home=home, api_port=free_port(), temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port(), host="ithv", domain_prefix=PREFIX,
                 guest_cache=tiny_guest,
                 **({"agent_timeout": 30, "stop_timeout": 30, "reboot_timeout": 10,
                     "power_sync_interval": 10} | stack_overrides))  # a tier may change these
    # the stack's host runs its own libvirtd (vmflow.hostbed): tests look at that one
    s = s.model_copy(update={"libvirt_uri": hostbed.host(s, s.host).libvirt_uri})
    guest.HOSTS[:] = [s.libvirt_uri]
    try:
        stack.up(s)
    except BaseException:
        stack.down(s)  # what did start must not outlive the run (one NFS server per machine)
        teardown_home(home)  # the error carries the failing component's log tail
        raise
    yield s
    record_histories(s.temporal_address, s.temporal_namespace)  # with VMFLOW_RECORD_HISTORIES
    stack.down(s)  # powers the stack's hosts off: their guests with them
    teardown_home(home)  # pool mounts, immutable mount points, loop devices, files


@pytest.fixture(scope="session")
def api(it_settings: Settings) -> Iterator[httpx.Client]:
    token = it_settings.admin_token_file.read_text().strip()
    with httpx.Client(base_url=it_settings.base_url, timeout=30,
                      headers=bearer(token)) as client:
        yield client


def wait_operation(api: httpx.Client, op_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op: dict[str, Any] = api.get(f"/v1/operations/{op_id}").json()
        if op["status"] != "running":
            return op
        time.sleep(0.3)
    raise AssertionError(f"operation {op_id} still running after {timeout}s: {op}")


def create_server(api: httpx.Client, name: str, image: str = "tiny",
                  flavor: str = "t1.micro") -> tuple[str, str]:
    r = api.post("/v1/servers", json={"name": name, "image": image, "flavor": flavor})
    assert r.status_code == 202, r.text
    return r.json()["server"]["id"], r.json()["operation"]["id"]


def action(api: httpx.Client, server_id: str, body: dict[str, Any]) -> httpx.Response:
    return api.post(f"/v1/servers/{server_id}/action", json=body)


def act(api: httpx.Client, server_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Run a workflow action to its end; returns the finished operation."""
    r = action(api, server_id, body)
    assert r.status_code == 202, r.text
    return wait_operation(api, r.json()["operation"]["id"])


def delete_server(api: httpx.Client, server_id: str) -> dict[str, Any]:
    r = api.delete(f"/v1/servers/{server_id}")
    assert r.status_code == 202, r.text
    return wait_operation(api, r.json()["operation"]["id"])


def ledger_audit(s: Settings) -> dict[str, list[str]]:
    """Domains and instance directories on the host that the ledger does not know."""
    with db_session(s) as session:
        known = {(e.kind, e.key) for e in session.exec(select(Ledger))}
    conn = libvirt.open(s.libvirt_uri)
    domains = [d.UUIDString() for d in conn.listAllDomains() if d.name().startswith(PREFIX)]
    dirs = [p.name for p in (s.host_dir() / "instances").glob("*")]
    return {
        "domains": [d for d in domains if ("domain", d) not in known],
        "dirs": [d for d in dirs if ("disk", d) not in known],
    }


def remains(s: Settings, server_id: str) -> dict[str, object]:
    """What a deleted or compensated server could leave behind: all empty when clean."""
    conn = libvirt.open(s.libvirt_uri)
    with db_session(s) as session:
        return {
            "domain": [d.name() for d in conn.listAllDomains() if d.UUIDString() == server_id],
            "dir": (s.host_dir() / "instances" / server_id).exists(),
            "allocation": session.get(Allocation, server_id),
            "ledger": session.exec(select(Ledger).where(Ledger.instance_id == server_id)).all(),
        }


CLEAN = {"domain": [], "dir": False, "allocation": None, "ledger": []}
