"""The soak's invariants, checked once the faults stop and every operation ended:
operations, servers against both hosts' libvirt, frozen guests, the ledger on both
hosts, the export files; and after deleting everything, that nothing remains."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import libvirt
import libvirt_qemu
from sqlmodel import Session, select

from activities.storage.ganesha import GaneshaExports
from vmflow import db, hostbed
from vmflow.models import Ledger
from vmflow.settings import Settings

POWER = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
         libvirt.VIR_DOMAIN_SHUTOFF: "shutoff", libvirt.VIR_DOMAIN_SHUTDOWN: "running"}
# what each status means on the hypervisor (tests/integration/guest.py EXPECTED_POWER)
EXPECTED_POWER = {"ACTIVE": "running", "SHUTOFF": "shutoff", "PAUSED": "paused",
                  "SUSPENDED": "shutoff+saved", "RESCUE": "running"}
NO_DOMAIN = {"SHELVED_OFFLOADED"}
OK_OPS = {"succeeded", "compensated"}


def conns(s: Settings) -> dict[str, libvirt.virConnect]:
    return {h.name: libvirt.open(h.libvirt_uri) for h in hostbed.bed(s)}


def find(c: libvirt.virConnect, uuid: str) -> libvirt.virDomain | None:
    try:
        return c.lookupByUUIDString(uuid)
    except libvirt.libvirtError:
        return None


def power(dom: libvirt.virDomain) -> str:
    saved = "+saved" if dom.hasManagedSaveImage(0) else ""
    return POWER.get(dom.state()[0], "other") + saved


def operations(api: httpx.Client, status: str) -> list[dict[str, Any]]:
    r = api.get("/v1/operations", params={"status": status, "limit": 1000})
    r.raise_for_status()
    ops: list[dict[str, Any]] = r.json()["operations"]
    return ops


def wait_quiet(api: httpx.Client, timeout: float) -> list[dict[str, Any]]:
    """Until no operation runs (bounded); what still runs at the end."""
    deadline = time.monotonic() + timeout
    running = operations(api, "running")
    while running and time.monotonic() < deadline:
        time.sleep(2)
        running = operations(api, "running")
    return running


def check_operations(api: httpx.Client) -> list[dict[str, Any]]:
    out = []
    for status in ("failed", "running"):
        for op in operations(api, status):
            out.append({"check": f"operation {status}", "id": op["id"],
                        "type": f"{op['resource_type']}.{op['action']}",
                        "resource": op["resource_id"], "last_error": op.get("last_error"),
                        "started_at": op.get("started_at"), "finished_at": op.get("finished_at")})
    return out


def explain(s: Settings, violation: dict[str, Any], faults: list[dict[str, Any]],
            limit: int = 30) -> None:
    """Adds the last fault before the violation's operation ended (or now) and the log
    lines of the stack that name its operation or resource: read before the home goes."""
    end = violation.get("finished_at") or violation.get("started_at")
    until = datetime.fromisoformat(end).timestamp() if end else time.time()
    before = [f for f in faults if f["at"] <= until]
    violation["fault_before"] = before[-1] if before else None
    needles = [str(violation[k]) for k in ("id", "resource", "server", "share", "domain")
               if violation.get(k)]
    lines: list[str] = []
    for log in sorted(s.log_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if any(n in line for n in needles):
                lines.append(f"{log.name}: {line[:400]}")
    violation["log"] = lines[-limit:]


def freeze_status(dom: libvirt.virDomain) -> str:
    try:
        out = libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": "guest-fsfreeze-status"}),
                                            10, 0)
        return str(json.loads(out)["return"])
    except libvirt.libvirtError as e:
        return f"agent: {e.get_error_message()}"


def check_servers(s: Settings, api: httpx.Client) -> tuple[list[dict[str, Any]], list[str]]:
    """Violations, and notes (a guest whose agent did not answer: not proof of a freeze)."""
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    hosts = conns(s)
    for server in api.get("/v1/servers").raise_for_status().json()["servers"]:
        sid, status = server["id"], server["status"]
        server = api.get(f"/v1/servers/{sid}").raise_for_status().json()

        def bad(what: str, **more: Any) -> None:
            out.append({"check": what, "server": sid, "status": status, **more})  # noqa: B023

        if server.get("task_state"):
            bad("task_state not null", task_state=server["task_state"])
        found = {h: d for h, c in hosts.items() if (d := find(c, sid)) is not None}
        if status in NO_DOMAIN:
            if found:
                bad("domain of an offloaded server", hosts=sorted(found))
            continue
        where = server.get("host")
        if where not in found:
            bad("no domain on the host the API names", host=where, defined_on=sorted(found))
            continue
        if set(found) - {where}:
            bad("domain on another host", host=where, also_on=sorted(set(found) - {where}),
                active=[h for h in found if h != where and found[h].isActive()])
        dom = found[where]
        want, have = EXPECTED_POWER.get(status), power(dom)
        if want is not None and want != have:
            bad("power state does not match status", expected=want, libvirt=have)
        if have == "running":
            frozen = freeze_status(dom)
            if frozen == "frozen":
                bad("guest frozen")
            elif frozen != "thawed":
                notes.append(f"{sid} ({status}): {frozen}")
    return out, notes


def check_ledger(s: Settings) -> list[dict[str, Any]]:
    """Domains and instance dirs on either host the ledger does not know."""
    with Session(db.engine_for(s.db_url)) as session:
        known = {(e.host, e.kind, e.key) for e in session.exec(select(Ledger))}
    out: list[dict[str, Any]] = []
    for host, c in conns(s).items():
        for d in c.listAllDomains():
            if d.name().startswith(s.domain_prefix) and (host, "domain", d.UUIDString()) \
                    not in known:
                out.append({"check": "domain not in the ledger", "host": host,
                            "domain": d.UUIDString()})
        for p in (s.host_dir(host) / "instances").glob("*"):
            if (host, "disk", p.name) not in known:
                out.append({"check": "instance dir not in the ledger", "host": host,
                            "dir": p.name})
    return out


def check_exports(s: Settings, api: httpx.Client) -> list[dict[str, Any]]:
    shares = {x["id"] for x in api.get("/v1/shares").raise_for_status().json()["shares"]}
    files = set(GaneshaExports(s).export_files())
    out: list[dict[str, Any]] = []
    out += [{"check": "share without export file", "share": x} for x in sorted(shares - files)]
    out += [{"check": "export file without share", "share": x} for x in sorted(files - shares)]
    return out


def remains(s: Settings) -> list[dict[str, Any]]:
    """After deleting everything: no domain, instance dir or export file anywhere."""
    out: list[dict[str, Any]] = []
    for host, c in conns(s).items():
        out += [{"check": "domain remains", "host": host, "domain": d.name()}
                for d in c.listAllDomains() if d.name().startswith(s.domain_prefix)]
        out += [{"check": "instance dir remains", "host": host, "dir": p.name}
                for p in (s.host_dir(host) / "instances").glob("*")]
    out += [{"check": "export file remains", "share": x}
            for x in GaneshaExports(s).export_files()]
    return out
