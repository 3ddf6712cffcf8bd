"""Pure host selection: filters (state, traits, capacity) then a weigher (free RAM).

State is Nova's service state: a disabled host (with its reason), a forced-down one
and one whose heartbeat stopped (`alive` false) take no new guests.

Flavor extra_specs ask for host traits the placement way: `trait:HW_X=required`
(or `forbidden`). Every rejected host gets a reason, so NoValidHost says why.

Rescheduling: the request carries the hosts this placement already tried with why
each failed (their worker did not take the step) and how many hosts it may try; once
that many were tried, the hosts still fit are rejected too ("not tried"), so one
message names every host and why.

Liveness is asked last and lazily (`choose`): asking Temporal costs RPCs per host, so
the hosts are filtered and weighed on what the database says first, and only the best
candidates are asked, best first, until one is up. Only when none is up is every host
asked, so NoValidHost gives each host the same reason `select` would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class HostState:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    traits: list[str]
    alive: bool  # a fresh heartbeat
    used_vcpus: int = 0
    used_ram_mb: int = 0
    used_disk_gb: int = 0
    status: str = "enabled"
    disabled_reason: str | None = None
    forced_down: bool = False


@dataclass(frozen=True)
class Request:
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str] = field(default_factory=list)
    forbidden_traits: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    tried: dict[str, str] = field(default_factory=dict)  # host: why it failed this placement
    attempts: int = 0  # hosts a placement may try; 0: no bound
    requested_host: str | None = None  # an admin named the host: no other is considered


@dataclass(frozen=True)
class Ratios:
    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0
    reserved_ram_mb: int = 512


def traits_from_extra_specs(extra_specs: dict[str, str]) -> tuple[list[str], list[str]]:
    required, forbidden = [], []
    for key, value in extra_specs.items():
        if key.startswith("trait:"):
            if value == "required":
                required.append(key.removeprefix("trait:"))
            elif value == "forbidden":
                forbidden.append(key.removeprefix("trait:"))
    return sorted(required), sorted(forbidden)


def free(h: HostState, r: Ratios) -> tuple[float, float, float]:
    return (
        h.vcpus * r.cpu - h.used_vcpus,
        (h.ram_mb - r.reserved_ram_mb) * r.ram - h.used_ram_mb,
        h.disk_gb * r.disk - h.used_disk_gb,
    )


def rejection(h: HostState, req: Request, r: Ratios) -> str | None:
    if h.name in req.tried:  # what happened on it, not what it looks like now
        return req.tried[h.name]
    if h.name in req.exclude:
        return "did not pick up work in time"
    if req.requested_host and h.name != req.requested_host:
        return f"not the requested host {req.requested_host}"
    return state_rejection(h) or trait_rejection(h, req) or capacity_rejection(h, req, r)


def state_rejection(h: HostState) -> str | None:
    if h.status != "enabled":
        return f"disabled: {h.disabled_reason}" if h.disabled_reason else "disabled"
    if h.forced_down:
        return "forced down"
    if not h.alive:
        return DOWN
    return None


DOWN = "down (no heartbeat from its worker)"


def trait_rejection(h: HostState, req: Request) -> str | None:
    missing = [t for t in req.required_traits if t not in h.traits]
    if missing:
        return f"lacks trait {', '.join(missing)}"
    bad = [t for t in req.forbidden_traits if t in h.traits]
    if bad:
        return f"has forbidden trait {', '.join(bad)}"
    return None


def capacity_rejection(h: HostState, req: Request, r: Ratios) -> str | None:
    cpu, ram, disk = free(h, r)
    if cpu < req.vcpus:
        return f"only {cpu:g} free vCPUs"
    if ram < req.ram_mb:
        return f"only {ram:g} MiB free RAM"
    if disk < req.disk_gb:
        return f"only {disk:g} GB free disk"
    return None


def select(hosts: list[HostState], req: Request, r: Ratios) -> tuple[list[str], dict[str, str]]:
    """Return (hosts that fit, best first; reasons for the others)."""
    reasons = {h.name: why for h in hosts if (why := rejection(h, req, r))}
    reasons |= {name: why for name, why in req.tried.items() if name not in reasons}
    fit = [h for h in hosts if h.name not in reasons]
    fit.sort(key=lambda h: (-free(h, r)[1], h.name))
    if req.attempts and len(req.tried) >= req.attempts:
        reasons |= {h.name: attempts_used(req.attempts) for h in fit}
        return [], reasons
    return [h.name for h in fit], reasons


def attempts_used(attempts: int) -> str:
    return f"not tried: the {attempts} schedule attempt(s) are used up"


def no_valid_host_message(reasons: dict[str, str]) -> str:
    if not reasons:
        return "No valid host was found: no hypervisor host is registered."
    detail = "; ".join(f"{name}: {why}" for name, why in sorted(reasons.items()))
    return f"No valid host was found. {len(reasons)} host(s) rejected: {detail}."


# which of the named hosts are up, in their order (activities/control/liveness.py)
AskAlive = Callable[[list[str]], Awaitable[list[bool]]]
MAX_BATCH = 16


async def first_up(ranked: list[str], ask: AskAlive) -> tuple[list[str], list[str]]:
    """Ask the best 1, the next 2, 4, ... (at most MAX_BATCH at once) until some are up:
    (those up, best first; those found down). A few dead hosts on top cost a few round
    trips, not one question per host."""
    down: list[str] = []
    start, size = 0, 1
    while start < len(ranked):
        batch = ranked[start:start + size]
        answers = await ask(batch)
        up = [name for name, ok in zip(batch, answers, strict=True) if ok]
        down += [name for name, ok in zip(batch, answers, strict=True) if not ok]
        if up:
            return up, down
        start, size = start + size, min(MAX_BATCH, size * 2)
    return [], down


async def choose(hosts: list[HostState], req: Request, r: Ratios, ask: AskAlive,
                 down: frozenset[str] = frozenset()) -> tuple[list[str], dict[str, str]]:
    """`select`, with liveness asked last and only where it decides: rank the hosts on
    state, traits and room, then ask the candidates best first (first_up). `down`: hosts
    already found down by the caller (not asked again). When none is up, each host
    found down gets DOWN and the others their reason from the database (state, traits,
    room, attempts): a full host is named full, up or not, which is as true and is what
    stops it; asking every host instead costs 2 RPCs each (seconds, and the namespace
    rate limit, at 1000 hosts)."""
    ranked, reasons = select([replace(h, alive=h.name not in down) for h in hosts], req, r)
    up, dead = await first_up(ranked, ask)
    return up, reasons | {name: DOWN for name in dead}
