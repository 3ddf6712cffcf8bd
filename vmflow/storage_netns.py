"""The storage side's own network namespace, `vmflow-storage-<stack tag>`: nfs-ganesha
and its rpcbind listen there, never in the machine's own namespace.

Processes enter it with `nsenter --net` (vmflow.stack_storage adds a mount namespace
that is a slave of the machine's, so the share mounts the storage worker makes are
what ganesha exports). The storage worker drives ganesha over D-Bus, a unix socket,
which no network namespace affects.

With a host bed (vmflow.hostbed) the namespace also has a port on the hosts' underlay
switch, `underlay0` with ADDRESS, the address export locations show (settings
nfs_address), so the hosts' namespaces, and guest networks routed there, reach the
exports. Without one it has only its loopback (tests join their clients to it).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

from vmflow import hostbed
from vmflow.processes import StackError
from vmflow.settings import Settings

# hosts are 10.77.0.1..N (hostbed numbering): the storage side takes one near the top
ADDRESS = f"{hostbed.UNDERLAY_NET}.250"
SWITCH_PORT = "portstorage"  # its port on the switch's bridge
STOP_TIMEOUT = 5.0
REPLY_TABLE = "vmflow_share_return"  # nft table: replies go back the way they came
REPLY_TABLE_BASE = 1000  # routing table of host i: 1000 + i
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def name(s: Settings) -> str:
    """Per stack home, like hostbed's names: two stacks' namespaces never meet."""
    tag = hashlib.sha1(str(s.home.resolve()).encode()).hexdigest()[:6]
    return f"vmflow-storage-{tag}"


def path(s: Settings) -> Path:
    return Path("/run/netns") / name(s)


def inside(s: Settings, *argv: str) -> list[str]:
    """A command line that runs argv in the namespace, and only there (nsenter --net:
    the mount namespace stays the machine's)."""
    return ["nsenter", f"--net={path(s)}", *argv]


def exists(s: Settings) -> bool:
    return path(s).exists()


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise StackError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def ensure(s: Settings) -> None:
    """The namespace with its loopback up, and its underlay port when the stack's
    switch exists (the host bed starts before the storage side). Idempotent: also
    repairs a link a crash left half-made."""
    ns = name(s)
    if not exists(s):
        _run("ip", "netns", "add", ns)
    _run("ip", "-n", ns, "link", "set", "lo", "up")
    switch = hostbed.switch_netns(s)
    if Path("/run/netns", switch).exists():
        _ensure_underlay(ns, switch)
        ensure_reply_routes(s)


def _ensure_underlay(ns: str, switch: str) -> None:
    dev = hostbed.UNDERLAY_DEV
    if _run("ip", "-n", ns, "link", "show", dev, check=False).returncode == 0:
        return
    _run("ip", "-n", switch, "link", "del", SWITCH_PORT, check=False)  # a crash's half
    # both ends made in their namespaces: nothing appears in the machine's own
    _run("ip", "link", "add", dev, "netns", ns, "type", "veth",
         "peer", "name", SWITCH_PORT, "netns", switch)
    _run("ip", "-n", switch, "link", "set", SWITCH_PORT, "master", "br0", "up")
    _run("ip", "-n", ns, "addr", "add", f"{ADDRESS}/24", "dev", dev)
    _run("ip", "-n", ns, "link", "set", dev, "up")


def _host_macs(s: Settings) -> dict[int, str]:
    """Host index -> the MAC of its underlay port, for the hosts whose namespace is up."""
    macs: dict[int, str] = {}
    for h in hostbed.bed(s):
        if not Path("/run/netns", h.netns).exists():
            continue
        r = _run("ip", "-n", h.netns, "-j", "link", "show", hostbed.UNDERLAY_DEV, check=False)
        found = json.loads(r.stdout or "[]") if r.returncode == 0 else []
        mac = str(found[0].get("address", "")) if found else ""
        if _MAC.match(mac):
            macs[h.index] = mac
    return macs


def reply_table(macs: dict[int, str]) -> str:
    """The nft table that sends replies back through the host their request came
    through (docs/decisions.md, "Guests reach their shares"): a connection is marked
    with the index of the host whose MAC its latest packet came from; a packet of ours
    carries its connection's mark, and the mark picks the route (ip rule fwmark)."""
    for index, mac in macs.items():
        if not (isinstance(index, int) and 0 < index < 250 and _MAC.match(mac)):
            raise ValueError(f"not a host port: {index!r} {mac!r}")
    pairs = ", ".join(f"{mac} : {index}" for index, mac in sorted(macs.items()))
    learn = (f'\t\tiifname "{hostbed.UNDERLAY_DEV}" ct mark set ether saddr map {{ {pairs} }}\n'
             if pairs else "")
    return (f"table ip {REPLY_TABLE}\ndelete table ip {REPLY_TABLE}\n"
            f"table ip {REPLY_TABLE} {{\n"
            "\tchain pre {\n\t\ttype filter hook prerouting priority -150; policy accept;\n"
            f"{learn}\t\tmeta mark set ct mark\n\t}}\n"
            "\tchain out {\n\t\ttype route hook output priority -150; policy accept;\n"
            "\t\tmeta mark set ct mark\n\t}\n}\n")


def ensure_reply_routes(s: Settings) -> None:
    """Guests on any host reach ganesha with their own addresses (no NAT: the access
    rules name them), so each reply must go back through the host the guest sits on,
    the only one that delivers to it (kernel.py: a host never sends into a VXLAN).
    Per host: a routing table whose default is that host, chosen by a packet's mark;
    marks come from the reply table. Idempotent; rerun when a host's port may be new
    (each access change does)."""
    if not exists(s) or _run("ip", "-n", name(s), "link", "show", hostbed.UNDERLAY_DEV,
                             check=False).returncode != 0:
        return
    ns = name(s)
    for key, value in (("net.ipv4.tcp_fwmark_accept", "1"),  # a SYN's mark routes its SYN-ACK
                       ("net.ipv4.conf.all.rp_filter", "0"),  # guests' subnets have no route
                       (f"net.ipv4.conf.{hostbed.UNDERLAY_DEV}.rp_filter", "0")):
        _run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")
    macs = _host_macs(s)
    rules = json.loads(_run("ip", "-n", ns, "-j", "rule", "show").stdout or "[]")
    have = {int(r["table"]) for r in rules if str(r.get("table", "")).isdigit()}
    for h in hostbed.bed(s):
        table = str(REPLY_TABLE_BASE + h.index)
        _run("ip", "-n", ns, "route", "replace", "default", "via", h.address,
             "dev", hostbed.UNDERLAY_DEV, "table", table)
        if int(table) not in have:
            _run("ip", "-n", ns, "rule", "add", "fwmark", str(h.index), "table", table,
                 "priority", table)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=reply_table(macs),
                   capture_output=True, text=True, timeout=60, check=True)


def addresses(s: Settings) -> list[str]:
    """The namespace's IPv4 addresses (for status and tests)."""
    if not exists(s):
        return []
    out = _run("ip", "-n", name(s), "-o", "-4", "addr", "show", check=False).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


def remove(s: Settings) -> None:
    """Whatever still runs in the namespace is stopped (by pid: `ip netns del` only
    drops the name, and a process left inside would keep it and its links alive),
    then the namespace goes, its underlay link with it."""
    if not exists(s):
        return
    pids = _run("ip", "netns", "pids", name(s), check=False).stdout.split()
    for pid in pids:
        subprocess.run(["kill", pid], capture_output=True)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            break
        time.sleep(0.1)
    _run("ip", "netns", "del", name(s), check=False)
