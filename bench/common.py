"""What both benchmarks need: a private stack of their own (a home under /var/tmp,
free ports, host `benchhv`, domains `vmflowbench-*`) with an admin API client,
removed at the end also on Ctrl-C or SIGTERM; and polling an operation to its end.
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
from vmflow import stack
from vmflow.processes import free_port
from vmflow.settings import Settings

PREFIX = "vmflowbench-"
RESULTS = Path(__file__).resolve().parent / "results"
GUEST = Path("/var/cache/vmflow/tiny-guest")



def wait_op(api: httpx.Client, op_id: str, every: float, timeout: float = 300,
            say: str = "") -> dict[str, Any]:
    """Poll the operation until it is no longer running; print its steps if `say`."""
    deadline, step = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        op: dict[str, Any] = api.get(f"/v1/operations/{op_id}").raise_for_status().json()
        if say and op.get("step") != step:
            step = op.get("step")
            print(f"  {say}: {step or op['status']}", flush=True)
        if op["status"] != "running":
            return op
        time.sleep(every)
    raise RuntimeError(f"operation {op_id} still running after {timeout:.0f} s")


@contextmanager
def private_stack() -> Iterator[tuple[Settings, httpx.Client]]:
    """A stack of the bench's own, up, and an admin client of its API."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    home = Path(tempfile.mkdtemp(prefix="vmflow-bench-", dir="/var/tmp"))
    home.chmod(0o755)  # qemu must traverse to the disks
    s = Settings(home=home, api_port=free_port(), temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port(), host="benchhv", domain_prefix=PREFIX,
                 guest_cache=GUEST)
    try:
        stack.ensure_guest(s)
        stack.up(s)
        token = s.admin_token_file.read_text().strip()
        with httpx.Client(base_url=s.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            yield s, api
    finally:
        _cleanup(s)


def _cleanup(s: Settings) -> None:
    """Stop the stack, destroy and undefine every bench guest (vmflow's and any a
    benchmark made itself), remove the home; each part even if an earlier one failed."""
    try:
        stack.down(s)
    finally:
        try:
            for dom in libvirt.open(s.libvirt_uri).listAllDomains():
                if dom.name().startswith(PREFIX):
                    guest = Domain(dom)
                    guest.destroy()
                    guest.undefine()
        finally:
            shutil.rmtree(s.home, ignore_errors=True)
