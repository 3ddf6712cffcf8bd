"""The thaw guard: `python -m activities.hypervisor.thaw_guard URI UUID DEADLINE_EPOCH`.

A snapshot arms it before it freezes a guest (DESIGN 8). It is a process of its own
(a new session, so a kill -9 of the hypervisor worker or of its process group does
not take it along): it sleeps until the deadline, then thaws the guest, retrying
while the agent does not answer, because an agent that was hung during the freeze
may still apply the queued freeze when it wakes. The snapshot kills it once it has
thawed the guest itself; a guard that fires anyway does no harm, thawing a thawed
guest is a no-op (and a later snapshot of the same guest ends any guard still
sleeping before it freezes, so an old guard never cuts a new freeze short).

It prints "armed" once libvirt is imported and the arguments are valid, so the
snapshot freezes only with a guard that can actually run.
"""

from __future__ import annotations

import contextlib
import sys
import time

import libvirt

from activities.hypervisor.libvirt.domain import NOTHING_TO_THAW, Domain

KEEP_TRYING_S = 300.0  # after the deadline: a hung agent may wake up this late
RETRY_S = 1.0


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} thaw-guard: {msg}", file=sys.stderr, flush=True)


def thaw_once(uri: str, uuid: str) -> bool:
    """True when nothing more can or needs to be done."""
    try:
        dom = Domain.find(libvirt.open(uri), uuid)
        if dom is None:
            log(f"nothing to thaw for {uuid}: the domain is not defined")
            return True
        with contextlib.suppress(libvirt.libvirtError):  # an old libvirt: its default then
            dom.limit_agent_wait(5)
        n = dom.thaw()
        log(f"thawed {uuid} ({n} file systems were frozen)")
        return True
    except libvirt.libvirtError as e:
        # gone, not running or no agent configured: nothing is frozen, or nothing can be
        if e.get_error_code() in NOTHING_TO_THAW:
            log(f"nothing to thaw for {uuid}: {e}")
            return True
        log(f"thaw of {uuid} failed, will retry: {e}")
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m activities.hypervisor.thaw_guard URI UUID DEADLINE_EPOCH",
              file=sys.stderr)
        return 2
    uri, uuid, deadline = argv[1], argv[2], float(argv[3])
    print("armed", flush=True)
    sys.stdout.close()  # the worker reads one line; nothing else goes there
    time.sleep(max(0.0, deadline - time.time()))
    log(f"deadline reached for {uuid}: thawing")
    give_up = time.time() + KEEP_TRYING_S
    while not thaw_once(uri, uuid):
        if time.time() > give_up:
            log(f"gave up thawing {uuid}")
            return 1
        time.sleep(RETRY_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
