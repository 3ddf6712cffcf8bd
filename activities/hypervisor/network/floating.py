"""Floating IPs on a host (issue 12 item 4): the floating address on the host's
external link (so the outside's ARP finds this host), 1:1 DNAT/SNAT in vmflow's nft
table (activities/hypervisor/network/nat.py), guests without one masqueraded to the
host's external address, forwarding on, and connection tracking of the address
flushed after every change (an entry made before a change keeps its old NAT).

All of it in the host's own namespace (testbed network REPORT section 5). Each
activity ensures a state and may run any number of times; bad input is a
non-retryable InvalidState. One lock per host serialises the read-modify-write of
the table.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from temporalio import activity

from activities.errors import permanent
from activities.hypervisor.network import nat
from activities.hypervisor.network.kernel import NetworkCommandError, run
from activities.hypervisor.underlay import in_host_netns
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.networks import FloatingIpRef, FloatingIpSpec, HostFloatingIps
from vmflow.contracts.reconcile import HostRef
from vmflow.hostbed import EXTERNAL_DEV
from vmflow.settings import Settings

log = logging.getLogger(__name__)

# after the nwfilter jumps libvirt keeps at the top of FORWARD, so security groups
# still judge what reaches a guest through its floating IP (REPORT pitfall 4)
FORWARD_DNAT = ["FORWARD", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"]


class FloatingIpActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    # ---- helpers ----------------------------------------------------------------------
    def _require_external(self) -> ipaddress.IPv4Interface:
        """The host's address on its external link; a host without one has no outside."""
        if not self.settings.host_netns:
            raise permanent("floating IPs live only in a host's own network namespace; "
                            f"host {self.settings.host} has none", Errors.INVALID_STATE)
        for a in self._addresses():
            if a.network.prefixlen < 32:
                return a
        raise permanent(f"host {self.settings.host} has no address on {EXTERNAL_DEV}",
                        Errors.INVALID_STATE)

    def _addresses(self) -> list[ipaddress.IPv4Interface]:
        r = run(self.settings, ["ip", "-j", "addr", "show", "dev", EXTERNAL_DEV], check=False)
        if r.returncode != 0:
            return []
        return [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
                for link in json.loads(r.stdout or "[]") for a in link.get("addr_info", [])
                if a.get("family") == "inet"]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        d = self.settings.host_dir()
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "floating-ips.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _table(self) -> list[nat.Nat]:
        r = run(self.settings, ["nft", "-j", "list", "table", "ip", nat.TABLE], check=False)
        return nat.parse(r.stdout) if r.returncode == 0 else []

    def _write(self, nats: list[nat.Nat]) -> None:
        r = _run_input(self.settings, ["nft", "-f", "-"], nat.table(nats, EXTERNAL_DEV))
        if r.returncode != 0:
            raise NetworkCommandError(f"nft -f: {r.stderr.strip()}")

    def _forwarding(self) -> None:
        """Routing between the bridges and the external link, and DNATed flows let
        through a FORWARD chain whatever its policy."""
        run(self.settings, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        if run(self.settings, ["iptables", "-C", *FORWARD_DNAT], check=False).returncode != 0:
            run(self.settings, ["iptables", "-A", *FORWARD_DNAT])

    def _forget_connections(self, floating: ipaddress.IPv4Address) -> None:
        """Connections to the address (inbound) and from it (SNATed outbound): gone,
        so the next packet meets the rules as they are now. Exit 1: none there."""
        for flag in ("-d", "--reply-dst"):
            r = run(self.settings, ["conntrack", "-D", flag, str(floating)], check=False)
            if r.returncode not in (0, 1):
                raise NetworkCommandError(f"conntrack -D {flag} {floating}: {r.stderr.strip()}")

    def _announce(self, floating: ipaddress.IPv4Address) -> None:
        """A gratuitous ARP, so the outside's neighbour entry follows a moved address
        at once; best effort (its cache also ages out by itself)."""
        r = run(self.settings, ["busybox", "arping", "-U", "-c", "1", "-w", "1", "-I",
                                EXTERNAL_DEV, "-s", str(floating), str(floating)], check=False)
        if r.returncode != 0:
            log.warning("gratuitous ARP for %s: %s", floating, r.stderr.strip())

    def ensure_egress(self) -> None:
        """Forwarding on and the masquerade in place, for guests without a floating IP
        (with every network: activities.py ensure_network); a host without an
        external link has no outside to reach."""
        if not self.settings.host_netns or not any(
                a.network.prefixlen < 32 for a in self._addresses()):
            return
        with self._locked():
            self._forwarding()
            r = run(self.settings, ["nft", "list", "chain", "ip", nat.TABLE, "egress"],
                    check=False)
            if r.returncode != 0:
                self._write(self._table())

    # ---- activities ---------------------------------------------------------------------
    @activity.defn(name=HostActs.ENSURE_FLOATING_IP)
    def ensure_floating_ip(self, spec: FloatingIpSpec) -> None:
        try:
            want = nat.nat(spec.floating_ip, spec.fixed_ip, spec.vni)
        except ValueError as e:
            raise permanent(f"invalid floating IP: {e}", Errors.INVALID_STATE) from e
        ext = self._require_external()
        if want.floating not in ext.network or want.floating == ext.ip:
            raise permanent(f"floating IP {want.floating} is not an address of host "
                            f"{self.settings.host}'s external link {ext.network}",
                            Errors.INVALID_STATE)
        with self._locked():
            self._forwarding()
            have = self._table()
            # one mapping per floating IP, and per fixed IP on a network
            keep = [n for n in have if n.floating != want.floating
                    and (n.fixed, n.vni) != (want.fixed, want.vni)]
            if sorted([*keep, want]) != have:
                self._write([*keep, want])
                for dropped in {n.floating for n in have} - {n.floating for n in keep}:
                    self._unplumb(dropped)
            if ipaddress.IPv4Interface(f"{want.floating}/32") not in self._addresses():
                run(self.settings, ["ip", "addr", "replace", f"{want.floating}/32",
                                    "dev", EXTERNAL_DEV])
            self._forget_connections(want.floating)
        self._announce(want.floating)

    def _unplumb(self, floating: ipaddress.IPv4Address) -> None:
        if ipaddress.IPv4Interface(f"{floating}/32") in self._addresses():
            run(self.settings, ["ip", "addr", "del", f"{floating}/32", "dev", EXTERNAL_DEV])
        self._forget_connections(floating)

    @activity.defn(name=HostActs.REMOVE_FLOATING_IP)
    def remove_floating_ip(self, ref: FloatingIpRef) -> None:
        """NAT, address and connections of the floating IP gone; absent is done."""
        try:
            floating = nat.address(ref.floating_ip, "floating IP")
        except ValueError as e:
            raise permanent(f"invalid floating IP: {e}", Errors.INVALID_STATE) from e
        if not self.settings.host_netns:
            return  # nothing of it can exist here
        with self._locked():
            have = self._table()
            keep = [n for n in have if n.floating != floating]
            if keep != have:
                self._write(keep)
            self._unplumb(floating)

    @activity.defn(name=HostActs.LIST_FLOATING_IPS)
    def list_floating_ips(self, ref: HostRef) -> HostFloatingIps:
        if ref.host != self.settings.host:
            raise permanent(f"this worker is host {self.settings.host}, not {ref.host}",
                            Errors.INVALID_STATE)
        if not self.settings.host_netns:
            return HostFloatingIps(ref.host, [], [])
        specs = [FloatingIpSpec(str(n.floating), str(n.fixed), n.vni) for n in self._table()]
        extra = sorted(str(a.ip) for a in self._addresses() if a.network.prefixlen == 32)
        return HostFloatingIps(ref.host, specs, extra)

    def all(self) -> list[Callable[..., Any]]:
        return [self.ensure_floating_ip, self.remove_floating_ip, self.list_floating_ips]


def _run_input(settings: Settings, argv: list[str],
               text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(in_host_netns(settings, argv), input=text, capture_output=True,
                          text=True, timeout=60)
