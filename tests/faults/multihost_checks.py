"""What must hold on both hosts of the bed after a kill-matrix cell: the server where the
API says (defined on exactly that host, in the power its status implies), no libvirt
job, no move left unfinished, no NBD server, no tap off any guest, no filter of a port
that is not bound there, no partial file, and the ledger knows every domain and dir."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import libvirt
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus

from activities.hypervisor.libvirt import filter_xml
from tests.conftest import db_session
from tests.faults.cases import Case, Started
from tests.faults.multihost_cases import MhPool
from tests.integration.guest import EXPECTED_POWER
from tests.multihost.conftest import PREFIX, domains_of
from vmflow import hostbed
from vmflow.models import Ledger
from vmflow.settings import Settings
from vmflow.temporal import connect

PARTIAL = (".part", ".tmp", "snap-", "disk.new", "disk.old")
# a move no longer under way (finished: waiting for confirm or revert; done: an
# evacuation whose old host has not registered again yet)
FINAL = {"finished", "confirmed", "reverted", "error", "completed", "cancelled", "failed",
         "done", "aborted"}
POWER = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
         libvirt.VIR_DOMAIN_SHUTOFF: "shutoff"}
FILTER_PREFIX = filter_xml.filter_name(str(uuid.UUID(int=0)))[:-36]


def _power(dom: libvirt.virDomain) -> str:
    state = POWER.get(dom.state()[0], str(dom.state()[0]))
    return "shutoff+saved" if state == "shutoff" and dom.hasManagedSaveImage() else state


def server_on_hosts(bed: Settings, api: httpx.Client, sid: str, hosts: list[str],
                    conns: dict[str, libvirt.virConnect]) -> list[str]:
    r = api.get(f"/v1/servers/{sid}")
    defined = {h for h in hosts if sid in domains_of(conns[h])}
    if r.status_code == 404:
        return [f"deleted server defined on {sorted(defined)}"] if defined else []
    srv = r.json()
    bad = [] if srv["task_state"] is None else [f"task_state {srv['task_state']}"]
    host, status = srv["host"], srv["status"]
    want = "running" if status == "VERIFY_RESIZE" else EXPECTED_POWER.get(status)
    if want is None:
        return bad + [f"status {status}"]
    if host not in defined:
        return bad + [f"{status} on {host} but not defined there (defined on {defined})"]
    got = _power(conns[host].lookupByUUIDString(sid))
    bad += [] if got == want else [f"{status} but {got} on {host}"]
    for other in defined - {host}:  # the source keeps its copy, shut off, until confirm
        kept = status == "VERIFY_RESIZE" and _power(conns[other].lookupByUUIDString(sid))
        bad += [] if kept == "shutoff" else [f"also defined on {other}"]
    return bad


def libvirt_jobs(hosts: list[str], conns: dict[str, libvirt.virConnect]) -> list[str]:
    return [f"libvirt job on {h}: {d.name()}" for h in hosts
            for d in conns[h].listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            if d.name().startswith(PREFIX) and d.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE]


def moves_unfinished(api: httpx.Client, sid: str) -> list[str]:
    shown = api.get("/v1/os-migrations", params={"instance_uuid": sid}).json()["migrations"]
    status = api.get(f"/v1/servers/{sid}").json().get("status")
    bad = [f"migration {m['id']} {m['status']}" for m in shown if m["status"] not in FINAL]
    bad += [f"migration {m['id']} finished but server {status}" for m in shown
            if m["status"] == "finished" and status != "VERIFY_RESIZE"]
    return bad


def nbd_left(bed: Settings, hosts: list[str]) -> list[str]:
    """qemu-nbd serving any file of the bed, or a pid file of one (resize's exports)."""
    bad = [f"pid file {p}" for h in hosts for p in bed.host_dir(h).rglob("nbd-*.pid")]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-nbd") and str(bed.home).encode() in b" ".join(argv):
            bad.append(f"qemu-nbd {proc.name}")
    return bad


def taps_left(bed: Settings, hosts: list[str], conns: dict[str, libvirt.virConnect]
              ) -> list[str]:
    bad = []
    for h in hosts:
        used = {t.get("dev") for d in conns[h].listAllDomains(
                    libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                for t in ElementTree.fromstring(d.XMLDesc()).iterfind(
                    "./devices/interface/target")}
        out = subprocess.run(["ip", "-n", hostbed.host(bed, h).netns, "-d", "-j", "link"],
                             capture_output=True, text=True, check=True).stdout
        taps = [link["ifname"] for link in json.loads(out)
                if link.get("linkinfo", {}).get("info_kind") == "tun"]
        bad += [f"tap {t} on {h}" for t in taps if t not in used]
    return bad


def filters_left(api: httpx.Client, hosts: list[str], conns: dict[str, libvirt.virConnect]
                 ) -> list[str]:
    """A port's filter only where the port is bound (and on a resized server's source,
    which keeps its copy until confirm or revert)."""
    bad = []
    for h in hosts:
        for f in conns[h].listAllNWFilters():
            if not f.name().startswith(FILTER_PREFIX):
                continue
            port_id = f.name()[len(FILTER_PREFIX):]
            r = api.get(f"/v1/ports/{port_id}")
            if r.status_code == 200 and r.json().get("binding:host_id") != h:
                device = api.get(f"/v1/servers/{r.json().get('device_id')}")
                if device.status_code == 200 and device.json()["status"] == "VERIFY_RESIZE":
                    continue
            if r.status_code != 200 or r.json().get("binding:host_id") != h:
                bad.append(f"filter of port {port_id} on {h} "
                           f"({r.status_code}, {r.json().get('binding:host_id')})")
    return bad


def partial_files(bed: Settings, hosts: list[str]) -> list[str]:
    roots = [*(bed.host_dir(h) for h in hosts), bed.image_store]
    return [f"partial {p}" for root in roots if root.exists() for p in root.rglob("*")
            if any(mark in p.name for mark in PARTIAL)]


def ledger_audit(bed: Settings, hosts: list[str], conns: dict[str, libvirt.virConnect]
                 ) -> list[str]:
    """tests.integration.conftest.ledger_audit, per host (it reads only the first)."""
    with db_session(bed) as s:
        known = {(e.host, e.kind, e.key) for e in s.exec(select(Ledger))}
    bad = []
    for h in hosts:
        bad += [f"domain {d} on {h} not in the ledger" for d in domains_of(conns[h])
                if (h, "domain", d) not in known]
        bad += [f"dir {p.name} on {h} not in the ledger"
                for p in (bed.host_dir(h) / "instances").glob("*")
                if (h, "disk", p.name) not in known]
    return bad


def workflow_still_open(bed: Settings, workflow_id: str, timeout: float = 120) -> list[str]:
    """The operation's row can say it ended before its workflow closed (a kill after its
    last step): the server stays locked (409) until the restarted worker closes it."""
    if not workflow_id:
        return []

    async def wait() -> bool:
        handle = (await connect(bed)).get_workflow_handle(workflow_id)
        deadline = time.monotonic() + timeout
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)
        return True

    return [] if asyncio.run(wait()) else [f"workflow {workflow_id} still running"]


def violations(bed: Settings, api: httpx.Client, pool: MhPool, case: Case, started: Started,
               status: str) -> list[str]:
    hosts = pool.hosts
    conns = {h: libvirt.open(hostbed.host(bed, h).libvirt_uri) for h in hosts}
    try:
        bad = workflow_still_open(bed, started.workflow_id)
        if pool.server is not None:
            bad += server_on_hosts(bed, api, pool.server, hosts, conns)
            bad += moves_unfinished(api, pool.server)
        if case.workflow_type == "SyncFloatingIp":
            fip: dict[str, Any] = api.get(f"/v1/floating-ips/{started.resource}").json()
            bad += [] if fip["status"] == "ACTIVE" else [f"floating IP {fip['status']}"]
        bad += libvirt_jobs(hosts, conns) + nbd_left(bed, hosts)
        bad += taps_left(bed, hosts, conns) + filters_left(api, hosts, conns)
        bad += partial_files(bed, hosts) + ledger_audit(bed, hosts, conns)
        return bad
    finally:
        for c in conns.values():
            c.close()
