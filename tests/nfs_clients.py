"""NFS clients with their own addresses, for tests of access rules over real NFS.

The kernel here has no NFS client (testbed NOTES 0), so the client is libnfs-utils
(nfs-cp, nfs-cat, nfs-ls) run inside network namespaces: a bridge on this machine
holds SERVER (10.254.0.1/24), each namespace one client address (10.254.0.4, ...),
and ganesha, bound to every address, sees each client's own source address.

    with nfs_clients(["10.254.0.4", "10.254.0.5"]) as ns:
        nfs_write(ns["10.254.0.4"], nfs_url(path, "f.txt"), b"data")

Every name starts with `vmft`, so nothing of a running stack is touched; a machine-wide
lock makes concurrent test runs take turns (two bridges on one subnet would steal each
other's replies), and everything is removed on exit, after a failure too, and at entry
(what a killed run left behind).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SERVER = "10.254.0.1"
PREFIX_LEN = 24
BRIDGE = "vmftnfs0"
LOCK = Path("/run/lock/vmflow-test-nfs-clients.lock")
TIMEOUT_S = 30.0


class NfsError(RuntimeError):
    """A libnfs client command failed; the message has its exit code and stderr."""

    def __init__(self, argv: Sequence[str], rc: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: rc={rc}: {stderr.strip()}")
        self.rc = rc
        self.stderr = stderr


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=TIMEOUT_S)


def _names(address: str) -> tuple[str, str]:
    """(netns, host-side veth) for a client address: vmftnfs4 / vmftv4 for x.x.x.4."""
    last = address.rsplit(".", 1)[1]
    return f"vmftnfs{last}", f"vmftv{last}"


def _teardown() -> None:
    for ns in _ip("netns", "list").stdout.split("\n"):
        name = ns.split(" ", 1)[0]
        if name.startswith("vmftnfs"):
            _ip("netns", "del", name, check=False)  # takes its end of the veth with it
    for link in _ip("-o", "link", "show").stdout.splitlines():
        name = link.split(":")[1].strip().split("@")[0]
        if name.startswith("vmftv") or name == BRIDGE:
            _ip("link", "del", name, check=False)


@contextmanager
def nfs_clients(addresses: Sequence[str]) -> Iterator[dict[str, str]]:
    """A namespace per client address on a bridge holding SERVER; yields
    {address: netns name}."""
    net = ipaddress.ip_network(f"{SERVER}/{PREFIX_LEN}", strict=False)
    for a in addresses:  # our own constants, but names are built from them
        if ipaddress.ip_address(a) not in net or a == SERVER:
            raise ValueError(f"client address must be in {net} and not {SERVER}: {a}")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _teardown()
        try:
            _ip("link", "add", BRIDGE, "type", "bridge")
            _ip("addr", "add", f"{SERVER}/{PREFIX_LEN}", "dev", BRIDGE)
            _ip("link", "set", BRIDGE, "up")
            spaces = {}
            for a in addresses:
                ns, veth = _names(a)
                _ip("netns", "add", ns)
                _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("link", "set", veth, "master", BRIDGE, "up")
                _ip("-n", ns, "addr", "add", f"{a}/{PREFIX_LEN}", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                spaces[a] = ns
            yield spaces
        finally:
            _teardown()


def nfs_url(export_path: Path | str, name: str = "", version: int = 3) -> str:
    """NFSv3 URLs name the export Path; NFSv4 the Pseudo path, which we make the
    same (NOTES 1b)."""
    url = f"nfs://{SERVER}{export_path}"
    if name:
        url += f"/{name}"
    return url + ("?version=4" if version == 4 else "")


def _run(ns: str, argv: list[str], data: bytes | None = None) -> bytes:
    full = ["ip", "netns", "exec", ns, *argv]
    r = subprocess.run(full, input=data, capture_output=True, timeout=TIMEOUT_S)
    if r.returncode != 0:
        raise NfsError(argv, r.returncode, r.stderr.decode(errors="replace"))
    return r.stdout


def nfs_copy(ns: str, local: Path | str, url: str) -> None:
    """nfs-cp of a local file (a sparse one sends zeros that take real space)."""
    _run(ns, ["nfs-cp", str(local), url])


def nfs_write(ns: str, url: str, data: bytes) -> None:
    """Write `data` as the file at `url` from inside namespace `ns` (NfsError if refused)."""
    fd, local = tempfile.mkstemp(prefix="vmft-nfs-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _run(ns, ["nfs-cp", local, url])
    finally:
        os.unlink(local)


def nfs_read(ns: str, url: str) -> bytes:
    """The file at `url` as seen from namespace `ns` (NfsError if refused)."""
    return _run(ns, ["nfs-cat", url])


def nfs_ls(ns: str, url: str) -> list[str]:
    """Names in the directory at `url` (NfsError if refused)."""
    out = _run(ns, ["nfs-ls", url]).decode(errors="replace")
    return [line.split()[-1] for line in out.splitlines() if line.split()]
