"""What the benchmarks need: a private stack of their own (a home under /var/tmp,
free ports, host `benchhv`, domains `vmflowbench-*`) with an admin API client,
removed at the end also on Ctrl-C or SIGTERM; and polling an operation to its end.

A private stack shares nothing fixed with `make up` (or a test's stack): its ports
are free ones; its host runs a libvirtd of its own in its own namespaces
(vmflow.hostbed), and nfs-ganesha and its rpcbind listen on 2049/20048/20050 of
the stack's own storage namespace (vmflow.storage_netns), names tagged by the home.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import libvirt

from activities.hypervisor.libvirt.domain import Domain
from vmflow import hostbed, stack
from vmflow.processes import free_port
from vmflow.settings import Settings

PREFIX = "vmflowbench-"
RESULTS = Path(__file__).resolve().parent / "results"
GUEST = Path("/var/cache/vmflow/tiny-guest")



def wait_op(api: httpx.Client, op_id: str, every: float, timeout: float = 300,
            say: str = "", patient: bool = False) -> dict[str, Any]:
    """Poll the operation until it is no longer running; print its steps if `say`.
    `patient`: a poll the API does not answer in time (a loaded machine) is retried
    until the deadline instead of ending the wait."""
    deadline, step = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            op: dict[str, Any] = api.get(f"/v1/operations/{op_id}").raise_for_status().json()
        except httpx.TransportError:
            if not patient:
                raise
            continue
        if say and op.get("step") != step:
            step = op.get("step")
            print(f"  {say}: {step or op['status']}", flush=True)
        if op["status"] != "running":
            return op
        time.sleep(every)
    raise RuntimeError(f"operation {op_id} still running after {timeout:.0f} s")


@contextmanager
def private_stack(**settings: Any) -> Iterator[tuple[Settings, httpx.Client]]:
    """A stack of the bench's own, up, and an admin client of its API; `settings`
    override the stack's (say, a higher cpu_allocation_ratio). The settings
    given name the bench host's own libvirtd as `libvirt_uri`, the one its hypervisor
    worker uses (not the machine's qemu:///system, which `make up` does not start):
    a direct side works on the same libvirt as vmflow."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    home = Path(tempfile.mkdtemp(prefix="vmflow-bench-", dir="/var/tmp"))
    home.chmod(0o755)  # qemu must traverse to the disks
    s = Settings(home=home, api_port=free_port(), temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port(), host="benchhv", domain_prefix=PREFIX,
                 guest_cache=GUEST, **settings)
    try:
        stack.ensure_guest(s)
        stack.up(s)
        token = s.admin_token_file.read_text().strip()
        with httpx.Client(base_url=s.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            yield host_settings(s), api
    finally:
        _cleanup(s)


def host_settings(s: Settings) -> Settings:
    """`s` with libvirt_uri the first host's own libvirtd (vmflow.hostbed)."""
    if not hostbed.namespaced(s):
        return s
    return s.model_copy(update={"libvirt_uri": hostbed.host(s, s.host).libvirt_uri})


def _cleanup(s: Settings) -> None:
    """Destroy and undefine every bench guest (vmflow's and any a benchmark made
    itself), stop the stack, remove the home; each part even if an earlier one failed."""
    try:
        try:  # before stack.down stops the host's libvirtd
            _remove_guests(host_settings(s).libvirt_uri)
        finally:
            stack.down(s)
    finally:
        shutil.rmtree(s.home, ignore_errors=True)


def _remove_guests(uri: str) -> None:
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return  # the host's libvirtd never started: nothing was defined there
    try:
        for dom in conn.listAllDomains():
            if dom.name().startswith(PREFIX):
                guest = Domain(dom)
                guest.destroy()
                guest.undefine()
    finally:
        conn.close()
