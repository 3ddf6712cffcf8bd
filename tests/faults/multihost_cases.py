"""The kill matrix's operations that need two hosts or a network (tests/multihost's bed):
how to bring the shared server, network, port, floating IP and security group to where
each operation can start, how to start it, and how its end is awaited."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import libvirt
from sqlmodel import col, select
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from tests.conftest import db_session
from tests.faults.cases import Arm, Case, Pool, Started
from tests.integration.conftest import act, action, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch, remove_from_hosts, wait_hosts_up
from vmflow import hostbed, stack
from vmflow.contracts.resize import FINISHED, AutoConfirmRequest
from vmflow.models import Migration, Operation
from vmflow.names import CONTROL_QUEUE, auto_confirm_workflow_id
from vmflow.settings import Settings
from vmflow.temporal import connect

# two flavors bigger than t1.micro with the same root disk: a resize goes to the other
FLAVORS = {"mhk.a": (2, 320, 2), "mhk.b": (2, 384, 2)}
NET_NAME, CIDR, GATEWAY = "mhk-net", "10.97.0.0/24", "10.97.0.1"


def workflow_end(bed: Settings, workflow_id: str, timeout: float = 600) -> Callable[[], str]:
    """succeeded | failed of the latest run of a workflow with no operation row."""

    def wait() -> str:
        async def result() -> Any:
            client = await connect(bed)
            return await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(),
                                          timeout)
        try:
            out = asyncio.run(result())
        except WorkflowFailureError:
            return "failed"
        failed = out.get("failed") if isinstance(out, dict) else None
        return "failed" if failed else "succeeded"  # a sync round's failed ports
    return wait


async def closed(bed: Settings, workflow_id: str) -> None:
    client = await connect(bed)
    await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), 600)


def _accepted(r: httpx.Response, resource: str) -> Started:
    assert r.status_code == 202, r.text
    op = r.json()["operation"]
    return Started(resource, op["id"], op.get("workflow_id") or "")


class MhPool(Pool):
    """One server, one network (its port attached to the server), a floating IP and the
    port's security group, kept between cells: a guest boots once, not per kill."""

    def __init__(self, api: httpx.Client, bed: Settings, hosts: list[str]) -> None:
        super().__init__(api, bed)
        self.bed, self.hosts = bed, hosts
        self.net: str | None = None
        self.ext: str | None = None
        self.fip: str | None = None
        self.rule_port = 20000

    # ---- the server ------------------------------------------------------------------
    def server_active(self) -> str:
        api = self.api
        if self.server is not None:
            r = api.get(f"/v1/servers/{self.server}")
            now = r.json() if r.status_code == 200 else {}
            if now.get("status") == "VERIFY_RESIZE" and not now.get("task_state"):
                assert act(api, self.server, {"confirmResize": None})["status"] == "succeeded"
            elif r.status_code != 200:
                self.server = None
            elif now.get("status") != "ACTIVE" or now.get("task_state"):
                delete_server(api, self.server)
                self.server = None
        if self.server is None:
            self.server = launch(api, "fault-mh")["id"]
        return self.server

    def host_of(self, sid: str) -> str:
        return str(self.api.get(f"/v1/servers/{sid}").json()["host"])

    def other(self, host: str) -> str:
        (dest,) = set(self.hosts) - {host}
        return dest

    def server_resized(self) -> str:
        """The server in VERIFY_RESIZE after a cold migration to the other host."""
        sid = self.server_active()
        op = act(self.api, sid, {"migrate": {"host": self.other(self.host_of(sid))}})
        assert op["status"] == "succeeded", op
        # the operation succeeds before its workflow starts the auto-confirm timer:
        # wait for the workflow's end, so that the timer exists (or never will)
        asyncio.run(closed(self.bed, op["workflow_id"]))
        return sid

    def next_flavor(self, sid: str) -> str:
        for name, (vcpus, ram, disk) in FLAVORS.items():
            if self.api.get(f"/v1/flavors/{name}").status_code == 404:
                r = self.api.post("/v1/flavors", json={"name": name, "vcpus": vcpus,
                                                       "ram": ram, "disk": disk})
                assert r.status_code == 201, r.text
        now = self.api.get(f"/v1/servers/{sid}").json()["flavor_id"]
        return next(n for n in FLAVORS if self.api.get(f"/v1/flavors/{n}").json()["id"] != now)

    def migration_uuid(self, sid: str) -> str:
        with db_session(self.bed) as s:
            mig = s.exec(select(Migration).where(Migration.instance_id == sid,
                                                 Migration.status == FINISHED)
                         .order_by(col(Migration.id).desc())).first()
        assert mig is not None, f"{sid} has no finished move"
        return mig.uuid

    def confirm_started(self, migration_id: str) -> str | None:
        """The confirm the auto-confirm timer started (control.start_auto_confirm's key)."""
        with db_session(self.bed) as s:
            op = s.exec(select(Operation).where(
                Operation.idempotency_key == f"auto-confirm/{migration_id}")).first()
        return None if op is None else op.id

    # ---- the network, the port, the floating IP ----------------------------------------
    def network(self) -> str:
        if self.net is None:
            r = self.api.post("/v1/networks", json={"name": NET_NAME})
            assert r.status_code == 201, r.text
            self.net = r.json()["id"]
            r = self.api.post("/v1/subnets", json={"network_id": self.net, "cidr": CIDR,
                                                   "gateway_ip": GATEWAY})
            assert r.status_code == 201, r.text
        return self.net

    def interfaces(self, sid: str) -> list[dict[str, Any]]:
        shown = self.api.get(f"/v1/servers/{sid}/os-interface").json()
        return list(shown["interfaceAttachments"])

    def attached_port(self) -> str:
        sid = self.server_active()
        for nic in self.interfaces(sid):
            return str(nic["port_id"])
        net = self.network()
        r = self.api.post(f"/v1/servers/{sid}/os-interface",
                          json={"interfaceAttachment": {"net_id": net}})
        assert r.status_code == 202, r.text
        assert wait_operation(self.api, r.json()["operation"]["id"])["status"] == "succeeded"
        return str(r.json()["interfaceAttachment"]["port_id"])

    def no_interfaces(self) -> str:
        sid = self.server_active()
        for nic in self.interfaces(sid):
            r = self.api.delete(f"/v1/servers/{sid}/os-interface/{nic['port_id']}")
            assert r.status_code == 202, r.text
            assert wait_operation(self.api, r.json()["operation"]["id"])["status"] == "succeeded"
        return sid

    def floating_ip(self) -> str:
        """The floating IP, associated with nothing (its last sync ended)."""
        api = self.api
        if self.ext is None:
            rng = hostbed.external_network(self.bed)
            r = api.post("/v1/networks", json={"name": "mhk-public", "router:external": True})
            assert r.status_code == 201, r.text
            self.ext = r.json()["id"]
            r = api.post("/v1/subnets", json={
                "network_id": self.ext, "cidr": str(rng), "gateway_ip": str(rng[1]),
                "allocation_pools": [{"start": str(rng[160]), "end": str(rng[170])}]})
            assert r.status_code == 201, r.text
        if self.fip is None or api.get(f"/v1/floating-ips/{self.fip}").status_code != 200:
            r = api.post("/v1/floating-ips", json={"floating_network_id": self.ext})
            assert r.status_code == 201, r.text
            self.fip = r.json()["id"]
        if api.get(f"/v1/floating-ips/{self.fip}").json().get("port_id"):
            assert api.put(f"/v1/floating-ips/{self.fip}",
                           json={"port_id": None}).status_code == 200
        with contextlib.suppress(RPCError):  # not found: never associated yet
            workflow_end(self.bed, f"floatingip-{self.fip}", 300)()
        return self.fip

    def group_of(self, port_id: str) -> str:
        groups = self.api.get(f"/v1/ports/{port_id}").json().get("security_groups") or []
        if groups:
            return str(groups[0])
        r = self.api.post("/v1/security-groups", json={"name": "mhk-group"})
        assert r.status_code == 201, r.text
        gid = str(r.json()["id"])
        r = self.api.put(f"/v1/ports/{port_id}", json={"security_groups": [gid]})
        assert r.status_code == 200, r.text
        workflow_end(self.bed, f"secgroup-{gid}", 300)()
        return gid

    def close(self) -> None:
        if self.fip is not None:
            self.api.delete(f"/v1/floating-ips/{self.fip}")
        if self.server is not None:
            delete_server(self.api, self.server)
            self.server = None
        if self.net is not None:  # the external one is on no host's bridge
            remove_from_hosts(self.bed, self.api.get(f"/v1/networks/{self.net}").json())
        for net in (self.net, self.ext):
            if net is not None:
                self.api.delete(f"/v1/networks/{net}")


def _mh(pool: Pool) -> MhPool:
    assert isinstance(pool, MhPool)
    return pool


# ---- how each type starts ------------------------------------------------------------------
def resize(pool: Pool, arm: Arm) -> Started:
    p = _mh(pool)
    sid = p.server_active()
    flavor = p.next_flavor(sid)
    arm()
    return _accepted(action(p.api, sid, {"resize": {"flavorRef": flavor}}), sid)


def after_move(body: dict[str, Any]) -> Callable[[Pool, Arm], Started]:
    def start(pool: Pool, arm: Arm) -> Started:
        p = _mh(pool)
        sid = p.server_resized()
        arm()
        return _accepted(action(p.api, sid, body), sid)
    return start


def live_migrate(pool: Pool, arm: Arm) -> Started:
    p = _mh(pool)
    sid = p.server_active()
    arm()
    return _accepted(action(p.api, sid, {"os-migrateLive": {"host": None,
                                                            "block_migration": "auto"}}), sid)


def evacuate(pool: Pool, arm: Arm) -> Started:
    """The server's host forced down (its worker and guest stay up, as a fenced host's
    would not: the old copy is removed when the worker registers again, below)."""
    p = _mh(pool)
    sid = p.server_active()
    src = p.host_of(sid)
    assert p.api.put(f"/v1/hosts/{src}", json={"forced_down": True}).status_code == 200
    arm()
    r = action(p.api, sid, {"evacuate": {}})
    if r.status_code != 202:
        p.api.put(f"/v1/hosts/{src}", json={"forced_down": False})
    started = _accepted(r, sid)
    op_id = started.op_id
    assert op_id is not None

    def wait() -> str:
        op = wait_operation(p.api, op_id, timeout=900)
        status = str(op["status"])
        if status not in ("succeeded", "compensated"):
            print(f"evacuate {status}: {op.get('last_error')}")
        assert p.api.put(f"/v1/hosts/{src}", json={"forced_down": False}).status_code == 200
        if status == "succeeded":  # the old host's worker registers: its copy goes
            stack.stop_component(p.bed, stack.hypervisor_component(p.bed, src))
            stack.ensure_component(p.bed, stack.hypervisor_component(p.bed, src))
            wait_hosts_up(p.api, p.hosts)
            c = libvirt.open(hostbed.host(p.bed, src).libvirt_uri)
            try:
                deadline = time.monotonic() + 120
                while sid in domains_of(c) and time.monotonic() < deadline:
                    time.sleep(0.5)
            finally:
                c.close()
        return status

    return Started(sid, op_id, started.workflow_id, wait)


def attach(pool: Pool, arm: Arm) -> Started:
    p = _mh(pool)
    sid = p.no_interfaces()
    net = p.network()
    arm()
    return _accepted(p.api.post(f"/v1/servers/{sid}/os-interface",
                                json={"interfaceAttachment": {"net_id": net}}), sid)


def detach(pool: Pool, arm: Arm) -> Started:
    p = _mh(pool)
    port = p.attached_port()
    sid = p.server_active()
    arm()
    return _accepted(p.api.delete(f"/v1/servers/{sid}/os-interface/{port}"), sid)


def floating_ip_sync(pool: Pool, arm: Arm) -> Started:
    p = _mh(pool)
    port = p.attached_port()
    fip = p.floating_ip()
    arm()
    r = p.api.put(f"/v1/floating-ips/{fip}", json={"port_id": port})
    assert r.status_code == 200, r.text
    wid = f"floatingip-{fip}"
    return Started(fip, None, wid, workflow_end(p.bed, wid))


def security_group_sync(pool: Pool, arm: Arm) -> Started:
    p = _mh(pool)
    gid = p.group_of(p.attached_port())
    p.rule_port += 1
    arm()
    r = p.api.post("/v1/security-group-rules", json={
        "security_group_id": gid, "direction": "ingress", "protocol": "tcp",
        "port_range_min": p.rule_port, "port_range_max": p.rule_port})
    assert r.status_code == 201, r.text
    wid = f"secgroup-{gid}"
    return Started(gid, None, wid, workflow_end(p.bed, wid))


def auto_confirm(pool: Pool, arm: Arm) -> Started:
    """The resize's own timer (an hour on the bed) gives way to one of a second, started
    with the arguments the resize gives it; its end is the confirm it started."""
    p = _mh(pool)
    sid = p.server_resized()
    req = AutoConfirmRequest(sid, p.migration_uuid(sid), 1.0)
    wid = auto_confirm_workflow_id(sid)

    async def restart() -> None:
        client = await connect(p.bed)
        with contextlib.suppress(RPCError):  # none running
            await client.get_workflow_handle(wid).terminate("the kill matrix's own timer")
        arm()
        await client.start_workflow("AutoConfirmResize", req, id=wid, task_queue=CONTROL_QUEUE)

    asyncio.run(restart())

    def wait() -> str:
        async def result() -> str:
            client = await connect(p.bed)
            return str(await asyncio.wait_for(client.get_workflow_handle(wid).result(), 600))
        try:
            said = asyncio.run(result())
        except WorkflowFailureError as err:
            # the confirm it started cancels the timer; a timer whose step's answer was
            # lost (its worker died) is still waiting on the retry then: cancelled
            print(f"auto-confirm timer ended: {err.cause!r}")
            said = f"operation {p.confirm_started(req.migration_id)}"
        m = re.search(r"operation (\S+)", said)
        if m is None:
            return f"timer said {said!r}"
        op = wait_operation(p.api, m.group(1), timeout=600)
        if op["status"] not in ("succeeded", "compensated"):
            print(f"auto-confirm's confirm {op['status']}: {op.get('last_error')}")
        return str(op["status"])

    return Started(sid, None, wid, wait)


CASES = [
    Case("ResizeInstance", resize, "multihost"),
    Case("ConfirmResize", after_move({"confirmResize": None}), "multihost"),
    Case("RevertResize", after_move({"revertResize": None}), "multihost"),
    Case("LiveMigrateInstance", live_migrate, "multihost"),
    Case("EvacuateInstance", evacuate, "multihost"),
    Case("AttachInterface", attach, "multihost"),
    Case("DetachInterface", detach, "multihost"),
    Case("SyncFloatingIp", floating_ip_sync, "multihost"),
    Case("SyncSecurityGroup", security_group_sync, "multihost"),
    Case("AutoConfirmResize", auto_confirm, "multihost"),
]
BY_TYPE = {c.workflow_type: c for c in CASES}
