"""The hypervisor hosts of the embedded stack: each one its own libvirtd and virtlogd in
its own mount and network namespace, so N hosts on one machine behave like N machines
(testbed hypervisor NOTES section 5).

Each host gets:
- private bind mounts over /etc/libvirt, /var/lib/libvirt, /run/libvirt,
  /var/cache/libvirt and /var/log/libvirt (under `<host_dir>/libvirt/`), and its own
  `host_uuid` (libvirt refuses a migration to "the same host" by that uuid);
- its own network namespace `vmflow-<host>-<stack tag>` with one underlay link (`underlay0`,
  10.77.0.<i>/24) to a bridge in the stack's switch namespace, which joins all hosts
  like a rack switch; QEMU's migration stream and libvirt's peer-to-peer connection
  (`qemu+tcp://<underlay>/system`) use it, nothing outside the namespaces does;
- a unix socket every process of the machine can reach (`libvirt_uri`), which the
  host's worker and an operator's `virsh -c` use;
- an external link (`external0`, the <i+1>th address of VMFLOW_EXTERNAL_CIDR) to a
  second bridge in the switch namespace, where the stack's outside world lives: the
  namespace `vmflow-<host>-<stack tag>-outside` holds the first address of that range
  (the hosts' default gateway). Floating IPs are addresses of the same range that a
  host answers for (activities/hypervisor/network/floating.py); `vmflow admin outside
  -- CMD` runs a command there, as a client on the internet would.

Workers stay in the machine's own namespaces (they reach Temporal and the API on
loopback) and run what must happen "on the host's network" through
`ip netns exec <netns>` (activities/hypervisor/underlay.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vmflow.processes import StackError, read_pid
from vmflow.settings import Settings

UNDERLAY_NET = "10.77.0"  # /24 inside the stack's own namespaces only
UNDERLAY_DEV = "underlay0"
EXTERNAL_DEV = "external0"  # a host's and the outside's end of the external link
EXTERNAL_BRIDGE = "ext0"  # in the switch namespace
OUTSIDE_PORT = "extout"  # the outside's port on that bridge (a host's: ext<i>)
START_TIMEOUT = 90.0  # the first start probes QEMU's capabilities
MOUNTS = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "run": "/run/libvirt",
          "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}


@dataclass(frozen=True)
class BedHost:
    name: str
    index: int  # 1-based: the underlay address and the switch port
    root: Path  # <host_dir>/libvirt: what the bind mounts show

    @property
    def netns(self) -> str:
        return f"vmflow-{self.name}-{_stack_tag(self.root.parent.parent.parent)}"

    @property
    def address(self) -> str:
        return f"{UNDERLAY_NET}.{self.index}"

    @property
    def underlay_mac(self) -> str:
        """Fixed per host (locally administered), so a host started again keeps it:
        the storage namespace routes replies by the MAC a request came from."""
        return f"02:77:00:00:{self.index >> 8:02x}:{self.index & 0xFF:02x}"

    @property
    def socket(self) -> Path:
        return self.root / "run" / "libvirt-sock"

    @property
    def libvirt_uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def migration_uri(self) -> str:
        """What a peer's libvirtd dials for a peer-to-peer migration (the underlay)."""
        return f"qemu+tcp://{self.address}/system"

    def pid(self, daemon: str) -> int | None:
        pid = read_pid(self.root / "run" / f"{daemon}.pid")
        if pid is None or not Path(f"/proc/{pid}/cmdline").exists():
            return None
        return pid

    def env(self) -> dict[str, str]:
        """What the host's worker is started with."""
        return {"VMFLOW_HOST": self.name, "VMFLOW_LIBVIRT_URI": self.libvirt_uri,
                "VMFLOW_HOST_NETNS": self.netns, "VMFLOW_MIGRATION_ADDRESS": self.address,
                "VMFLOW_MIGRATION_URI": self.migration_uri}


def host_names(s: Settings) -> list[str]:
    """The first host is settings.host; extra ones (VMFLOW_HOSTS=N) are <host>-<i>."""
    return [s.host] + [f"{s.host}-{i}" for i in range(2, s.hosts + 1)]


def bed(s: Settings) -> list[BedHost]:
    return [BedHost(h, i, s.host_dir(h) / "libvirt")
            for i, h in enumerate(host_names(s), start=1)]


def namespaced(s: Settings) -> bool:
    """libvirt's test driver needs no hosts: the workers share it (fast tests)."""
    return not s.libvirt_uri.startswith("test:")


def _stack_tag(home: Path) -> str:
    """Two stacks on one machine (say `make up` and a benchmark's private one) may name
    their hosts alike; their namespaces never meet."""
    return hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:6]


def switch_netns(s: Settings) -> str:
    return f"vmflow-{s.host}-{_stack_tag(s.home)}-switch"


def outside_netns(s: Settings) -> str:
    """The outside world of the stack: where floating IPs are reached from."""
    return f"vmflow-{s.host}-{_stack_tag(s.home)}-outside"


def external_network(s: Settings) -> ipaddress.IPv4Network:
    net = ipaddress.ip_network(s.external_cidr, strict=True)
    if not isinstance(net, ipaddress.IPv4Network) or net.num_addresses < 8:
        raise StackError(f"VMFLOW_EXTERNAL_CIDR {s.external_cidr}: an IPv4 network of at "
                         "least 8 addresses is needed")
    return net


def outside_address(s: Settings) -> ipaddress.IPv4Interface:
    """The outside's address on the external link, the hosts' default gateway."""
    net = external_network(s)
    return ipaddress.IPv4Interface(f"{net[1]}/{net.prefixlen}")


def external_address(s: Settings, h: BedHost) -> ipaddress.IPv4Interface:
    net = external_network(s)
    if h.index < 1 or h.index + 2 >= net.num_addresses:
        raise StackError(f"host {h.name}: no address of {net} left for it")
    return ipaddress.IPv4Interface(f"{net[h.index + 1]}/{net.prefixlen}")


# ---- commands -------------------------------------------------------------------------


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise StackError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _ensure_netns(name: str) -> None:
    if not _netns_exists(name):
        _run("ip", "netns", "add", name)
    _run("ip", "-n", name, "link", "set", "lo", "up")


def _ensure_switch(s: Settings) -> None:
    sw = switch_netns(s)
    _ensure_netns(sw)
    for br in ("br0", EXTERNAL_BRIDGE):
        if _run("ip", "-n", sw, "link", "show", br, check=False).returncode != 0:
            _run("ip", "-n", sw, "link", "add", br, "type", "bridge")
        _run("ip", "-n", sw, "link", "set", br, "up")


def _ensure_veth(s: Settings, netns: str, port: str, address: ipaddress.IPv4Interface) -> bool:
    """EXTERNAL_DEV in `netns` with `address`, its peer `port` on the external bridge;
    False when it was there already."""
    sw = switch_netns(s)
    if _run("ip", "-n", netns, "link", "show", EXTERNAL_DEV, check=False).returncode == 0:
        return False
    _run("ip", "-n", sw, "link", "del", port, check=False)  # a half-made link of a crash
    _run("ip", "link", "add", EXTERNAL_DEV, "netns", netns, "type", "veth",
         "peer", "name", port, "netns", sw)
    _run("ip", "-n", sw, "link", "set", port, "master", EXTERNAL_BRIDGE, "up")
    _run("ip", "-n", netns, "addr", "add", str(address), "dev", EXTERNAL_DEV)
    _run("ip", "-n", netns, "link", "set", EXTERNAL_DEV, "up")
    return True


def _ensure_outside(s: Settings) -> None:
    """The outside world: one namespace on the external bridge, nothing routed beyond."""
    _ensure_netns(outside_netns(s))
    _ensure_veth(s, outside_netns(s), OUTSIDE_PORT, outside_address(s))


def _ensure_external(s: Settings, h: BedHost) -> None:
    """The host's uplink to the outside; its default route leads there."""
    if _ensure_veth(s, h.netns, f"ext{h.index}", external_address(s, h)):
        _run("ip", "-n", h.netns, "route", "replace", "default",
             "via", str(outside_address(s).ip), "dev", EXTERNAL_DEV)


def _ensure_link(s: Settings, h: BedHost) -> None:
    """The host's underlay port on the switch."""
    sw, port = switch_netns(s), f"port{h.index}"
    if _run("ip", "-n", h.netns, "link", "show", UNDERLAY_DEV, check=False).returncode == 0:
        return
    _run("ip", "-n", sw, "link", "del", port, check=False)  # a half-made link of a crash
    _run("ip", "link", "add", UNDERLAY_DEV, "netns", h.netns, "address", h.underlay_mac,
         "type", "veth", "peer", "name", port, "netns", sw)
    _run("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
    _run("ip", "-n", h.netns, "addr", "add", f"{h.address}/24", "dev", UNDERLAY_DEV)
    _run("ip", "-n", h.netns, "link", "set", UNDERLAY_DEV, "up")


def _write_config(s: Settings, h: BedHost) -> None:
    """A copy of the machine's libvirt configuration, then this host's own lines."""
    etc = h.root / "etc"
    if not (etc / "libvirtd.conf").exists():
        shutil.copytree("/etc/libvirt", etc, dirs_exist_ok=True, symlinks=True)
        for stale in [*etc.glob("qemu/*.xml"), *etc.glob("qemu/networks/autostart/*.xml")]:
            stale.unlink()  # the machine's own guests and networks are not this host's
        shutil.copytree("/var/cache/libvirt", h.root / "cache", dirs_exist_ok=True,
                        symlinks=True)  # QEMU's capabilities: seconds off the first start
    host_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"vmflow:{s.home}:{h.name}")
    (etc / "libvirtd.conf").write_text(
        f'host_uuid = "{host_uuid}"\n'
        f'listen_tls = 0\nlisten_tcp = 1\nlisten_addr = "{h.address}"\n'
        # only the stack's own namespaces reach the underlay: no other client exists
        'auth_tcp = "none"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
    (etc / "qemu.conf").write_text(
        "cgroup_controllers = [ ]\n"  # two daemons never fight over machine/qemu-ID-name
        f'migration_host = "{h.address}"\nmigration_address = "{h.address}"\n')


def _spawn_daemons(h: BedHost) -> None:
    for target in MOUNTS.values():  # /run/libvirt is gone after a boot until a libvirtd ran
        Path(target).mkdir(parents=True, exist_ok=True)
    mounts = "; ".join(f"mount --bind '{h.root / d}' '{target}'" for d, target in MOUNTS.items())
    # a virtlogd that outlived its libvirtd (killed alone) keeps running: a second one
    # could not take its pid file, and its guests' consoles stay with it
    virtlogd = ("" if h.pid("virtlogd") is not None
                else "/usr/sbin/virtlogd -d -p /run/libvirt/virtlogd.pid; ")
    script = f"set -e; {mounts}; {virtlogd}/usr/sbin/libvirtd -d -l -p /run/libvirt/libvirtd.pid"
    _run("ip", "netns", "exec", h.netns, "unshare", "-m", "--propagation", "private",
         "/bin/sh", "-c", script)


# ---- one host -------------------------------------------------------------------------


def start(s: Settings, h: BedHost) -> None:
    """Start the host unless its libvirtd runs; returns when its socket answers."""
    _ensure_switch(s)
    _ensure_outside(s)
    _ensure_netns(h.netns)
    _ensure_link(s, h)
    _ensure_external(s, h)
    if h.pid("libvirtd") is not None:
        return
    for d in MOUNTS:
        (h.root / d).mkdir(parents=True, exist_ok=True)
    (h.root / "lib" / "qemu").mkdir(exist_ok=True)
    shutil.chown(h.root / "lib" / "qemu", "libvirt-qemu", "libvirt-qemu")
    (h.root / "lib" / "qemu").chmod(0o750)
    _write_config(s, h)
    h.socket.unlink(missing_ok=True)
    _spawn_daemons(h)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(h):
        if time.monotonic() > deadline or h.pid("libvirtd") is None:
            raise StackError(f"host {h.name}: libvirtd does not answer on {h.libvirt_uri} "
                             f"(see {h.root / 'log' / 'libvirtd.log'})")
        time.sleep(0.2)


def _answers(h: BedHost) -> bool:
    r = subprocess.run(["virsh", "-c", h.libvirt_uri, "uri"], capture_output=True, timeout=30)
    return r.returncode == 0


def stop(h: BedHost) -> None:
    """Power off the host: its guests are destroyed (their definitions and disks stay,
    as after a host reboot), its daemons stopped, its namespace deleted."""
    if h.pid("libvirtd") is not None and h.socket.exists():
        names = _run("virsh", "-c", h.libvirt_uri, "list", "--name", check=False).stdout
        for name in names.split():
            _run("virsh", "-c", h.libvirt_uri, "destroy", name, check=False)
    for daemon in ("libvirtd", "virtlogd"):
        pid = h.pid(daemon)
        if pid is None:
            continue
        subprocess.run(["kill", str(pid)], capture_output=True)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        else:
            subprocess.run(["kill", "-9", str(pid)], capture_output=True)
        (h.root / "run" / f"{daemon}.pid").unlink(missing_ok=True)
    if _netns_exists(h.netns):
        _stop_netns_processes(h.netns)  # the DHCP servers of its guest networks
        _run("ip", "netns", "del", h.netns, check=False)  # its underlay link goes too


def _stop_netns_processes(netns: str) -> None:
    """What still runs in the host's namespace once its daemons stopped (dnsmasq per
    guest network), by pid: `ip netns del` only drops the name, and a process left
    in it would keep the namespace, its bridges and their addresses alive."""
    pids = _run("ip", "netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        subprocess.run(["kill", pid], capture_output=True)
    for _ in range(50):
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return
        time.sleep(0.1)
    for pid in pids:
        subprocess.run(["kill", "-9", pid], capture_output=True)


def stop_all(s: Settings) -> None:
    """Every host this home has run, also those beyond today's VMFLOW_HOSTS."""
    known = {h.name: h for h in bed(s)}
    for root in sorted(s.home.glob("hosts/*/libvirt")):
        stop(known.get(root.parent.name, BedHost(root.parent.name, 0, root)))
    if _netns_exists(outside_netns(s)):
        _stop_netns_processes(outside_netns(s))  # what an operator left running there
        _run("ip", "netns", "del", outside_netns(s), check=False)
    if _netns_exists(switch_netns(s)):
        _run("ip", "netns", "del", switch_netns(s), check=False)


def host(s: Settings, name: str) -> BedHost:
    for h in bed(s):
        if h.name == name:
            return h
    raise KeyError(name)
