"""The soak's operations: one random action on one idle server or share, chosen from
what its current status allows (now and then any action, to hear the API say 409),
sent, and followed to its end. Every outcome is kept for the report."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

OP_TIMEOUT_S = 900.0
POLL_S = 1.0
SETTLE_TIMEOUT_S = 300.0
WILD_CHANCE = 0.05  # an action picked without looking at the status: expect 409

# what Nova allows from each status (vmflow.states enforces the same table)
SERVER_MOVES: dict[str, list[str]] = {
    "ACTIVE": ["os-stop", "reboot-soft", "reboot-hard", "pause", "suspend", "createImage",
               "rescue", "rebuild", "shelve", "os-migrateLive", "migrate", "resize"],
    "SHUTOFF": ["os-start", "createImage", "rebuild", "shelve", "migrate", "resize"],
    "PAUSED": ["unpause", "createImage"],
    "SUSPENDED": ["resume", "createImage"],
    "RESCUE": ["unrescue"],
    "VERIFY_RESIZE": ["confirmResize", "revertResize"],
    "SHELVED": ["unshelve"],
    "SHELVED_OFFLOADED": ["unshelve"],
}
INTERFACE_STATUSES = {"ACTIVE", "SHUTOFF"}  # where an interface may be attached/detached
MAX_INTERFACES = 2
ALL_SERVER = sorted({a for moves in SERVER_MOVES.values() for a in moves})
SHARE_MOVES = ["extend", "shrink", "allow_access", "deny_access", "snapshot_create",
               "snapshot_delete"]
MAX_SHARE_GB = 3
MAX_RULES = 3
MAX_SNAPSHOTS = 2


@dataclass
class Tally:
    """What the workers did, under one lock (several threads write it)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    records: list[dict[str, Any]] = field(default_factory=list)
    conflicts: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # other 4xx: a soak bug
    unavailable: Counter[str] = field(default_factory=Counter)  # 5xx / no answer
    images: list[str] = field(default_factory=list)

    def add(self, **rec: Any) -> None:
        with self.lock:
            self.records.append(rec)
        why = f"  {rec['last_error']}" if rec["last_error"] else ""
        print(f"  {rec['kind']:<16} {rec['resource'][:8]} {rec['status']:<11} "
              f"{rec['seconds']:7.1f} s{why}", flush=True)


def wait_op(api: httpx.Client, op_id: str, timeout: float = OP_TIMEOUT_S) -> dict[str, Any]:
    """Poll to the end; an API that does not answer for a moment (Temporal restarting)
    is polled again. Returns the last view (status "running" if it never ended)."""
    deadline, op = time.monotonic() + timeout, {"id": op_id, "status": "running"}
    while time.monotonic() < deadline:
        try:
            r = api.get(f"/v1/operations/{op_id}")
            if r.status_code == 200:
                op = r.json()
                if op["status"] != "running":
                    return op
        except httpx.HTTPError:
            pass
        time.sleep(POLL_S)
    return op


class Actor:
    """Runs one action on one resource; the caller holds the resource for the time."""

    def __init__(self, api: httpx.Client, rng: random.Random, tally: Tally,
                 hosts: list[str], flavors: tuple[str, str], net_id: str | None):
        self.api, self.rng, self.tally = api, rng, tally
        self.hosts, self.flavors, self.net_id = hosts, flavors, net_id
        self.seq = 0

    # ---- servers ----------------------------------------------------------------------

    def server_body(self, action: str, server: dict[str, Any]) -> dict[str, Any]:
        other = [h for h in self.hosts if h != server.get("host")] or self.hosts
        self.seq += 1
        match action:
            case "reboot-soft" | "reboot-hard":
                return {"reboot": {"type": action.split("-")[1].upper()}}
            case "createImage":
                return {"createImage": {"name": f"soak-{server['id'][:8]}-{self.seq}"}}
            case "rescue":
                return {"rescue": {}}
            case "rebuild":
                return {"rebuild": {"imageRef": "tiny"}}
            case "os-migrateLive":
                return {"os-migrateLive": {"host": self.rng.choice(other)}}
            case "migrate":
                return {"migrate": {"host": self.rng.choice(other)}}
            case "resize":
                small, big = self.flavors
                return {"resize": {"flavorRef": small if server["flavor_id"] == big else big}}
            case "unshelve":
                return {"unshelve": {"host": self.rng.choice(self.hosts)}}
            case _:
                return {action: None}

    def server_step(self, sid: str) -> None:
        r = self.api.get(f"/v1/servers/{sid}")
        if r.status_code != 200:
            self.tally.unavailable["GET server"] += 1
            return
        server = r.json()
        moves = SERVER_MOVES.get(server["status"], [])
        if server.get("task_state") or not moves or self.rng.random() < WILD_CHANCE:
            moves = ALL_SERVER  # busy or odd: the API must say 409, not harm it
        ports = self.interfaces(sid) if server["status"] in INTERFACE_STATUSES else None
        if moves is not ALL_SERVER and ports is not None:
            moves = moves + (["interface-attach"] if len(ports) < MAX_INTERFACES else [])
            moves = moves + (["interface-detach"] if ports else [])
        action = self.rng.choice(moves)
        if action == "interface-attach":
            self.send(action, sid, f"/v1/servers/{sid}/os-interface",
                      {"interfaceAttachment": {"net_id": self.net_id}})
        elif action == "interface-detach":
            port = self.rng.choice(ports or ["none"])
            self.send(action, sid, f"/v1/servers/{sid}/os-interface/{port}", None, delete=True)
        else:
            self.send(action, sid, f"/v1/servers/{sid}/action", self.server_body(action, server))

    def interfaces(self, sid: str) -> list[str] | None:
        """The server's attached ports; None without a network to attach to."""
        if self.net_id is None:
            return None
        r = self.api.get(f"/v1/servers/{sid}/os-interface")
        if r.status_code != 200:
            return None
        return [x["port_id"] for x in r.json()["interfaceAttachments"]]

    # ---- shares -----------------------------------------------------------------------

    def share_step(self, share_id: str) -> None:
        r = self.api.get(f"/v1/shares/{share_id}")
        rules = self.api.get(f"/v1/shares/{share_id}/access-rules")
        snaps = self.api.get("/v1/share-snapshots")
        if any(x.status_code != 200 for x in (r, rules, snaps)):
            self.tally.unavailable["GET share"] += 1
            return
        share, access = r.json(), rules.json()["access_list"]
        mine = [x for x in snaps.json()["snapshots"] if x.get("share_id") == share_id]
        moves = ["extend"] if share["size"] < MAX_SHARE_GB else []
        moves += ["shrink"] if share["size"] > 1 else []
        moves += ["allow_access"] if len(access) < MAX_RULES else []
        moves += ["deny_access"] if access else []
        moves += ["snapshot_create"] if len(mine) < MAX_SNAPSHOTS else []
        moves += ["snapshot_delete"] if mine else []
        if share["status"] != "available" or self.rng.random() < WILD_CHANCE:
            moves = [m for m in SHARE_MOVES  # an id to name is needed for these two
                     if (m != "deny_access" or access) and (m != "snapshot_delete" or mine)]
        action = self.rng.choice(moves)
        path = f"/v1/shares/{share_id}/action"
        match action:
            case "extend" | "shrink":
                step = 1 if action == "extend" else -1
                self.send(action, share_id, path, {action: {"new_size": share["size"] + step}})
            case "allow_access":
                self.access(action, share_id, path, {"allow_access": {
                    "access_type": "ip", "access_level": self.rng.choice(["rw", "ro"]),
                    "access_to": f"10.254.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"}})
            case "deny_access":
                rule = self.rng.choice(access)["id"] if access else "no-such-rule"
                self.access(action, share_id, path, {"deny_access": {"access_id": rule}})
            case "snapshot_create":
                self.send(action, share_id, "/v1/share-snapshots",
                          {"share_id": share_id, "name": f"soak-{self.rng.randrange(10**6)}"})
            case "snapshot_delete":
                snap = self.rng.choice(mine)["id"] if mine else "no-such-snapshot"
                self.send(action, share_id, f"/v1/share-snapshots/{snap}", None, delete=True)

    # ---- sending and following --------------------------------------------------------

    def post(self, kind: str, path: str, body: dict[str, Any] | None,
             delete: bool = False) -> httpx.Response | None:
        try:
            return self.api.delete(path) if delete else self.api.post(path, json=body)
        except httpx.HTTPError:
            self.tally.unavailable[kind] += 1
            return None

    def answered(self, kind: str, r: httpx.Response | None) -> bool:
        """True for a 2xx; counts the rest."""
        if r is None:
            return False
        if r.status_code == 409:
            self.tally.conflicts[kind] += 1
        elif r.status_code >= 500:
            self.tally.unavailable[kind] += 1
        elif r.status_code >= 300:
            self.tally.refused[f"{kind} {r.status_code} {r.text[:120]}"] += 1
        return r.status_code < 300

    def send(self, kind: str, rid: str, path: str, body: dict[str, Any] | None,
             delete: bool = False) -> None:
        t0, started = time.monotonic(), time.time()
        r = self.post(kind, path, body, delete)
        if r is None or not self.answered(kind, r):
            return
        data = r.json()
        if data.get("image_id"):
            with self.tally.lock:
                self.tally.images.append(data["image_id"])
        op = wait_op(self.api, data["operation"]["id"])
        self.tally.add(kind=kind, resource=rid, op=op["id"], status=op["status"],
                       last_error=op.get("last_error"), started=started,
                       seconds=round(time.monotonic() - t0, 2))

    def access(self, kind: str, share_id: str, path: str, body: dict[str, Any]) -> None:
        """allow/deny answer with the rule; the access sync behind it is done when no
        rule is on its way and the share is no longer syncing."""
        t0, started = time.monotonic(), time.time()
        r = self.post(kind, path, body)
        if r is None or not self.answered(kind, r):
            return
        rule = r.json()["access"]["id"]
        status, deadline = "running", time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                share = self.api.get(f"/v1/shares/{share_id}").json()
                rules = self.api.get(f"/v1/shares/{share_id}/access-rules").json()["access_list"]
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(POLL_S)
                continue
            mine = [x for x in rules if x["id"] == rule]
            moving = any(x["state"] not in ("active", "error") for x in rules)
            if not moving and share.get("access_rules_status") != "syncing":
                gone_ok = kind == "deny_access" and not mine
                status = "succeeded" if gone_ok or (mine and mine[0]["state"] == "active") \
                    else f"rule {mine[0]['state'] if mine else 'gone'}"
                break
            time.sleep(POLL_S)
        self.tally.add(kind=kind, resource=share_id, op=rule, status=status, last_error=None,
                       started=started, seconds=round(time.monotonic() - t0, 2))
