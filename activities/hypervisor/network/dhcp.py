"""One dnsmasq per network per host, DHCP only (no DNS), inside the host's namespace,
bound to the network's bridge. It hands out only the addresses vmflow allocated: a
`static` range and one file per port in its hosts dir (`mac,ip,hostname`), re-read on
SIGHUP. Everything it owns lives in the network's state dir on the host:

    <host dir>/networks/<network id>/
        network.json   the spec the network was last ensured with
        hosts/<port>   one line per port
        leases         what it handed out (expiry mac ip hostname client-id)
        dnsmasq.pid    dnsmasq.log

Every value on its command line was validated (addresses by ipaddress, MACs by
pattern, ids as UUIDs) and is one argv element: no shell, no config text from input.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import time
import uuid
from pathlib import Path

from activities.hypervisor.network.kernel import bridge_name, run
from vmflow.contracts.networks import NetworkSpec, PortSpec
from vmflow.settings import Settings

LEASE_SECONDS = 3600
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
STOP_WAIT_S = 5.0


def check_network(spec: NetworkSpec) -> ipaddress.IPv4Network:
    """ValueError unless the spec is a well-formed IPv4 network."""
    uuid.UUID(spec.network_id)
    net = ipaddress.ip_network(spec.cidr)
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"{spec.cidr} is not an IPv4 subnet")
    if not 1 <= spec.vni <= 0xFFFFFF:
        raise ValueError(f"vni {spec.vni} is outside 1..16777215")
    if not 576 <= spec.mtu <= 9000:
        raise ValueError(f"mtu {spec.mtu} is outside 576..9000")
    if spec.gateway_ip is not None and ipaddress.ip_address(spec.gateway_ip) not in net:
        raise ValueError(f"gateway {spec.gateway_ip} is not in {spec.cidr}")
    if spec.dhcp and spec.gateway_ip is None:
        # the DHCP server answers from the gateway address on the bridge
        raise ValueError("DHCP on the hosts needs the subnet's gateway address")
    for a in [*spec.dns_nameservers, *spec.peers]:
        ipaddress.IPv4Address(a)
    return net


def check_port(port: PortSpec) -> None:
    uuid.UUID(port.port_id)
    uuid.UUID(port.network_id)
    if not MAC.match(port.mac):
        raise ValueError(f"{port.mac!r} is not a lower-case MAC address")
    ipaddress.IPv4Address(port.ip)


def state_dir(settings: Settings, network_id: str) -> Path:
    return settings.host_dir() / "networks" / str(uuid.UUID(network_id))


def argv(spec: NetworkSpec, d: Path) -> list[str]:
    net = check_network(spec)
    a = ["dnsmasq", "--conf-file=/dev/null", "--port=0", "--bind-dynamic",
         f"--interface={bridge_name(spec.vni)}", "--except-interface=lo",
         "--user=nobody", "--group=nogroup",
         f"--pid-file={d / 'dnsmasq.pid'}", f"--dhcp-leasefile={d / 'leases'}",
         f"--dhcp-hostsdir={d / 'hosts'}", f"--log-facility={d / 'dnsmasq.log'}",
         f"--dhcp-range={net.network_address},static,{net.netmask},{LEASE_SECONDS}",
         f"--dhcp-option=option:router,{spec.gateway_ip}",
         f"--dhcp-option=option:mtu,{spec.mtu}"]
    if spec.dns_nameservers:
        a.append(f"--dhcp-option=option:dns-server,{','.join(spec.dns_nameservers)}")
    return a


def pid(d: Path) -> int | None:
    """The network's dnsmasq if it runs: the pid in its pid file, checked against the
    process's command line (a pid is reused once its process is gone)."""
    try:
        p = int((d / "dnsmasq.pid").read_text().strip())
        cmdline = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return p if f"--pid-file={d / 'dnsmasq.pid'}".encode() in cmdline else None


def _running_argv(p: int) -> list[str]:
    return [a.decode() for a in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") if a]


def ensure(settings: Settings, spec: NetworkSpec) -> None:
    """dnsmasq runs for the network with exactly this spec's options (restarted if it
    ran with others)."""
    d = state_dir(settings, spec.network_id)
    (d / "hosts").mkdir(parents=True, exist_ok=True)
    for p in (d, d / "hosts"):
        p.chmod(0o755)  # dnsmasq reads its hosts dir as nobody
    want = argv(spec, d)
    running = pid(d)
    if running is not None:
        if _running_argv(running) == want:
            return
        stop(d)
    run(settings, want)  # daemonizes; a failure to bind or parse is its exit code


def stop(d: Path) -> None:
    p = pid(d)
    if p is None:
        return
    os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while Path(f"/proc/{p}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{p}").exists():
        os.kill(p, signal.SIGKILL)


def reload(d: Path) -> None:
    p = pid(d)
    if p is not None:
        os.kill(p, signal.SIGHUP)  # re-reads the hosts dir


def host_line(port: PortSpec) -> str:
    return f"{port.mac},{port.ip},host-{port.ip.replace('.', '-')}\n"


def add_port(d: Path, port: PortSpec) -> None:
    check_port(port)
    f = d / "hosts" / str(uuid.UUID(port.port_id))
    if f.exists() and f.read_text() == host_line(port):
        return
    tmp = f.with_name(f".{f.name}.tmp")
    tmp.write_text(host_line(port))
    tmp.chmod(0o644)
    tmp.rename(f)
    reload(d)


def leases(d: Path) -> list[tuple[str, str]]:
    """(mac, ip) of every lease in the lease file."""
    try:
        lines = (d / "leases").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [(f[1], f[2]) for f in (line.split() for line in lines) if len(f) >= 3]


def remove_port(settings: Settings, d: Path, port_id: str, mac: str) -> None:
    """The port's line gone, and its lease too: dnsmasq would refuse its address to the
    next port that gets it while the old lease lasts. dnsmasq reads its lease file only
    at start, so a lease is dropped by a stop, an edit and a start (a few ms)."""
    (d / "hosts" / str(uuid.UUID(port_id))).unlink(missing_ok=True)
    if mac not in {m for m, _ in leases(d)}:
        reload(d)
        return
    running = pid(d)
    want = _running_argv(running) if running is not None else None
    stop(d)
    kept = [line for line in (d / "leases").read_text().splitlines()
            if len(line.split()) < 2 or line.split()[1] != mac]
    (d / "leases").write_text("".join(f"{line}\n" for line in kept))
    if want is not None:
        run(settings, want)


def port_ids(d: Path) -> list[str]:
    if not (d / "hosts").is_dir():
        return []
    return sorted(p.name for p in (d / "hosts").iterdir() if not p.name.startswith("."))
