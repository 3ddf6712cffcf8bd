"""The operations the matrix kills workers in: how to bring a resource to where the
operation can start, how to start it, and what must hold once it ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults import background_cases as bg
from tests.integration.conftest import (
    CLEAN,
    act,
    action,
    create_server,
    delete_server,
    wait_operation,
)
from tests.integration.test_shares import allow, backend_remains, create_share, wait_rules
from vmflow.settings import Settings

# what reaches each server status from ACTIVE, and back
TO: dict[str, dict[str, Any]] = {"SHUTOFF": {"os-stop": None}, "PAUSED": {"pause": None},
      "SUSPENDED": {"suspend": None}, "RESCUE": {"rescue": {}},
      "SHELVED_OFFLOADED": {"shelve": None}}
BACK: dict[str, dict[str, Any]] = {"SHUTOFF": {"os-start": None}, "PAUSED": {"unpause": None},
        "SUSPENDED": {"resume": None}, "RESCUE": {"unrescue": None},
        "SHELVED_OFFLOADED": {"unshelve": None}, "SHELVED": {"unshelve": None}}


@dataclass
class Started:
    """A running operation: its resource and how to wait for it."""

    resource: str
    op_id: str | None  # None: a workflow with no operation row (the access sync)
    workflow_id: str
    # how its end is awaited when no operation row tells (a reconciler, a timer): returns
    # succeeded | compensated | failed; None: the operation row, or the access rules
    wait: Callable[[], str] | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # what its case's check compares


class Pool:
    """Servers and shares kept between boundaries: a guest boots once, not per kill."""

    def __init__(self, api: httpx.Client, s: Settings | None = None) -> None:
        self.api = api
        self.s = s  # the stack's: the background cases reach Temporal and the database
        self.server: str | None = None
        self.share: str | None = None

    def server_in(self, status: str) -> str:
        """The shared server, now in `status` (ACTIVE or one step away from it)."""
        api = self.api
        if self.server is not None:
            now = api.get(f"/v1/servers/{self.server}").json()
            if now.get("status") == status and not now.get("task_state"):
                return self.server
            if now.get("status") not in ("ACTIVE", *BACK) or now.get("task_state"):
                delete_server(api, self.server)
                self.server = None
            elif now["status"] != "ACTIVE":
                assert act(api, self.server, BACK[now["status"]])["status"] == "succeeded"
        if self.server is None:
            sid, op_id = create_server(api, "fault-matrix")
            assert wait_operation(api, op_id)["status"] == "succeeded"
            self.server = sid
        if status != "ACTIVE":
            assert act(api, self.server, TO[status])["status"] == "succeeded"
        return self.server

    def fresh_server(self) -> str:
        sid, op_id = create_server(self.api, "fault-fresh")
        assert wait_operation(self.api, op_id)["status"] == "succeeded"
        return sid

    def share_available(self, size: int = 2) -> str:
        api = self.api
        if self.share is not None:
            now = api.get(f"/v1/shares/{self.share}").json()
            if now.get("status") != "available":
                self.drop_share()
        if self.share is None:
            self.share = self.fresh_share(size)
        return self.share

    def fresh_share(self, size: int = 2) -> str:
        share_id, op_id = create_share(self.api, "fault-share", size)
        assert wait_operation(self.api, op_id)["status"] == "succeeded"
        return share_id

    def drop_share(self) -> None:
        if self.share is not None:
            self.api.delete(f"/v1/shares/{self.share}")
            self.share = None

    def close(self) -> None:
        if self.server is not None:
            delete_server(self.api, self.server)
        self.drop_share()


def _accepted(r: httpx.Response, resource: str) -> Started:
    assert r.status_code == 202, r.text
    op = r.json()["operation"]
    return Started(resource, op["id"], op.get("workflow_id") or "")


Arm = Callable[[], None]  # writes the fault spec: called right before the request


def server_action(status: str, body: dict[str, Any]) -> Callable[[Pool, Arm], Started]:
    def start(pool: Pool, arm: Arm) -> Started:
        sid = pool.server_in(status)
        arm()
        return _accepted(action(pool.api, sid, body), sid)
    return start


def launch(pool: Pool, arm: Arm) -> Started:
    arm()
    r = pool.api.post("/v1/servers", json={"name": "fault-launch", "image": "tiny",
                                           "flavor": "t1.micro"})
    return _accepted(r, r.json()["server"]["id"] if r.status_code == 202 else "")


def delete(pool: Pool, arm: Arm) -> Started:
    sid = pool.fresh_server()
    arm()
    return _accepted(pool.api.delete(f"/v1/servers/{sid}"), sid)


def snapshot(pool: Pool, arm: Arm) -> Started:
    sid = pool.server_in("ACTIVE")
    arm()
    return _accepted(action(pool.api, sid, {"createImage": {"name": "fault-snap"}}), sid)


def share_create(pool: Pool, arm: Arm) -> Started:
    arm()
    r = pool.api.post("/v1/shares", json={"share_proto": "NFS", "size": 1,
                                          "name": "fault-create"})
    return _accepted(r, r.json()["share"]["id"] if r.status_code == 202 else "")


def share_delete(pool: Pool, arm: Arm) -> Started:
    share_id = pool.fresh_share(1)
    arm()
    return _accepted(pool.api.delete(f"/v1/shares/{share_id}"), share_id)


def share_resize(verb: str) -> Callable[[Pool, Arm], Started]:
    def start(pool: Pool, arm: Arm) -> Started:
        share_id = pool.share_available()
        size = pool.api.get(f"/v1/shares/{share_id}").json()["size"]
        new = size + 1 if verb == "extend" else size - 1
        body = {verb: {"new_size": new}}
        arm()
        return _accepted(pool.api.post(f"/v1/shares/{share_id}/action", json=body), share_id)
    return start


def access_sync(pool: Pool, arm: Arm) -> Started:
    share_id = pool.share_available()
    n = len(pool.api.get(f"/v1/shares/{share_id}/access-rules").json()["access_list"])
    arm()
    allow(pool.api, share_id, f"10.254.1.{n + 1}", "rw")
    return Started(share_id, None, f"share-{share_id}-access")


def share_snapshot_create(pool: Pool, arm: Arm) -> Started:
    share_id = pool.share_available()
    arm()
    r = pool.api.post("/v1/share-snapshots", json={"share_id": share_id, "name": "fault"})
    return _accepted(r, share_id)


def share_snapshot_delete(pool: Pool, arm: Arm) -> Started:
    share_id = pool.share_available()
    r = pool.api.post("/v1/share-snapshots", json={"share_id": share_id, "name": "fault"})
    assert r.status_code == 202, r.text
    assert wait_operation(pool.api, r.json()["operation"]["id"])["status"] == "succeeded"
    snap_id = r.json()["snapshot"]["id"]
    arm()
    return _accepted(pool.api.delete(f"/v1/share-snapshots/{snap_id}"), share_id)


Check = Callable[[Settings, httpx.Client, Started, str], list[str]]


@dataclass(frozen=True)
class Case:
    workflow_type: str
    start: Callable[[Pool, Arm], Started]
    kind: str  # server | share | host: which end-state checks apply
    deletes: bool = False  # the resource is gone when the operation succeeded
    # what else must hold once it ended: (settings, api, started, status) -> violations
    check: Check | None = None


CASES = [
    Case("LaunchInstance", launch, "server"),
    Case("DeleteInstance", delete, "server", deletes=True),
    Case("StopInstance", server_action("ACTIVE", {"os-stop": None}), "server"),
    Case("StartInstance", server_action("SHUTOFF", {"os-start": None}), "server"),
    Case("RebootInstance", server_action("ACTIVE", {"reboot": {"type": "SOFT"}}), "server"),
    Case("PauseInstance", server_action("ACTIVE", {"pause": None}), "server"),
    Case("UnpauseInstance", server_action("PAUSED", {"unpause": None}), "server"),
    Case("SuspendInstance", server_action("ACTIVE", {"suspend": None}), "server"),
    Case("ResumeInstance", server_action("SUSPENDED", {"resume": None}), "server"),
    Case("RescueInstance", server_action("ACTIVE", {"rescue": {}}), "server"),
    Case("UnrescueInstance", server_action("RESCUE", {"unrescue": None}), "server"),
    Case("RebuildInstance", server_action("ACTIVE", {"rebuild": {"imageRef": "tiny"}}),
         "server"),
    Case("SnapshotInstance", snapshot, "server"),
    Case("ShelveInstance", server_action("ACTIVE", {"shelve": None}), "server"),
    Case("UnshelveInstance", server_action("SHELVED_OFFLOADED", {"unshelve": None}), "server"),
    Case("CreateShare", share_create, "share"),
    Case("DeleteShare", share_delete, "share", deletes=True),
    Case("ExtendShare", share_resize("extend"), "share"),
    Case("ShrinkShare", share_resize("shrink"), "share"),
    Case("SyncShareAccess", access_sync, "share"),
    Case("CreateShareSnapshot", share_snapshot_create, "share"),
    Case("DeleteShareSnapshot", share_snapshot_delete, "share"),
    # nobody starts these by hand (tests/faults/background_cases.py)
    Case("ReconcileLedger", bg.reconcile_ledger, "server", check=bg.ledger_kept),
    Case("PowerSync", bg.power_sync, "server", check=bg.in_status("ACTIVE")),
    Case("RegisterHost", bg.register_host, "host", check=bg.host_up),
    Case("ScheduledBackup", bg.scheduled_backup, "server", check=bg.one_backup),
    Case("AutoUnrescue", bg.auto_unrescue, "server",
         check=bg.both(bg.in_status("ACTIVE"), bg.once)),
    Case("ShelveOffloadTimer", bg.shelve_offload_timer, "server",
         check=bg.both(bg.in_status("SHELVED_OFFLOADED"), bg.once)),
    Case("ShelveOffloadInstance", bg.shelve_offload, "server",
         check=bg.in_status("SHELVED_OFFLOADED")),
]
BY_TYPE = {c.workflow_type: c for c in CASES}


def wait_rules_settled(api: httpx.Client, share_id: str) -> list[dict[str, Any]]:
    return wait_rules(api, share_id, timeout=180)


def share_gone(api: httpx.Client, share_id: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while api.get(f"/v1/shares/{share_id}").status_code != 404:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


__all__ = ["BY_TYPE", "CASES", "CLEAN", "Case", "Pool", "Started", "backend_remains",
           "share_gone", "wait_rules_settled"]
