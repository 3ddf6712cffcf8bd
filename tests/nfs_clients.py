"""NFS clients with their own addresses, for tests of access rules over real NFS.

The kernel here has no NFS client (testbed NOTES 0), so the client is libnfs-utils
(nfs-cp, nfs-cat, nfs-ls) run inside network namespaces. Nothing is in the machine's
own namespace: a namespace `vmftnfsbr` holds the bridge; the server's side is a veth
from it into the storage namespace that ganesha listens in (vmflow.storage_netns),
holding SERVER (10.254.0.1/24); each client namespace has one client address
(10.254.0.4, ...), so ganesha sees each client's own source address.

    with nfs_clients(["10.254.0.4", "10.254.0.5"], storage_netns.name(s)) as ns:
        nfs_write(ns["10.254.0.4"], nfs_url(path, "f.txt"), b"data")

Every name of ours starts with `vmft`, so nothing of a running stack is touched; a
machine-wide lock makes concurrent test runs take turns (the namespace names are
fixed), and everything is removed on exit, after a failure too, and at entry (what a
killed run left behind).
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
SWITCH = "vmftnfsbr"  # the namespace with the bridge
SERVER_DEV = "vmftnfs0"  # the server's veth end, in the storage namespace
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


def _client_netns(address: str) -> str:
    """vmftnfs4 for x.x.x.4; its veth is eth0 there and v4 on the bridge."""
    return f"vmftnfs{address.rsplit('.', 1)[1]}"


def _teardown(server_netns: str) -> None:
    if Path("/run/netns", server_netns).exists():  # both ends of the server's veth go
        _ip("-n", server_netns, "link", "del", SERVER_DEV, check=False)
    for ns in _ip("netns", "list").stdout.split("\n"):
        name = ns.split(" ", 1)[0]
        if name.startswith("vmftnfs"):
            _ip("netns", "del", name, check=False)  # takes its ends of the veths with it
    for link in _ip("-o", "link", "show").stdout.splitlines():  # an older version's
        name = link.split(":")[1].strip().split("@")[0]
        if name.startswith("vmftv") or name == SERVER_DEV:
            _ip("link", "del", name, check=False)


@contextmanager
def nfs_clients(addresses: Sequence[str], server_netns: str) -> Iterator[dict[str, str]]:
    """A namespace per client address, bridged to SERVER in `server_netns` (the
    storage namespace ganesha listens in); yields {address: netns name}."""
    net = ipaddress.ip_network(f"{SERVER}/{PREFIX_LEN}", strict=False)
    for a in addresses:  # our own constants, but names are built from them
        if ipaddress.ip_address(a) not in net or a == SERVER:
            raise ValueError(f"client address must be in {net} and not {SERVER}: {a}")
    if not Path("/run/netns", server_netns).exists():
        raise ValueError(f"no network namespace {server_netns}")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _teardown(server_netns)
        try:
            _ip("netns", "add", SWITCH)
            _ip("-n", SWITCH, "link", "add", "br0", "type", "bridge")
            _ip("-n", SWITCH, "link", "set", "br0", "up")
            _join(SWITCH, "srv", server_netns, SERVER_DEV, SERVER)
            spaces = {}
            for a in addresses:
                ns = _client_netns(a)
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
                _join(SWITCH, f"v{a.rsplit('.', 1)[1]}", ns, "eth0", a)
                spaces[a] = ns
            yield spaces
        finally:
            _teardown(server_netns)


def _join(switch: str, port: str, ns: str, dev: str, address: str) -> None:
    """A veth made with each end in its namespace (never in the machine's own): `port`
    on the switch's bridge, `dev` with `address` in `ns`."""
    _ip("link", "add", port, "netns", switch, "type", "veth", "peer", "name", dev, "netns", ns)
    _ip("-n", switch, "link", "set", port, "master", "br0", "up")
    _ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", dev)
    _ip("-n", ns, "link", "set", dev, "up")


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
