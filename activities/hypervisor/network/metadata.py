"""The metadata service on a hypervisor host (issue 12, item 5): 169.254.169.254 from a
guest answers with that guest's own documents.

- One server per host (metadata_server.py) inside the host's network namespace,
  supervised as dnsmasq is (dhcp.py): a pid file checked against the process's command
  line, started by an ensure, started again by the next ensure if it died.
- Per network: an nft rule in vmflow's own table in the host's namespace redirects
  `iifname vmfbr<vni> ip daddr 169.254.169.254 tcp dport 80` to the server's port on
  the bridge's own address; the server listens once per bridge (SO_BINDTODEVICE), so
  it knows the network a request came from.
- Per port: its documents in `<host dir>/networks/<network>/metadata/<ip>.json`,
  readable by the server's group only; removing the network removes them with the
  rest of its state dir.

The hypervisor worker has no database: the documents come from the control side in
an InstanceMetadata, published by a workflow (workflows/_base/metadata.py).
"""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.errors import permanent
from activities.hypervisor.network import dhcp, kernel, metadata_server
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.metadata import InstanceMetadata, MetadataRef
from vmflow.contracts.networks import NetworkRef
from vmflow.settings import Settings

METADATA_IP = "169.254.169.254"
TABLE = "vmflow_metadata"  # ip family, in the host's namespace only
CHAIN = "prerouting"
# a number, not `dstnat - 10` (nft 1.0.6 refuses expressions in some chains); ahead of
# any other nat table's dstnat (-100)
PRIORITY = "-110"
SERVER_USER = "nobody"
LISTEN_WAIT_S = 5.0
STOP_WAIT_S = 5.0
_lock = threading.Lock()  # one worker per host: server start and rule edits one at a time


def server_dir(settings: Settings) -> Path:
    return settings.host_dir() / "metadata"


def networks_root(settings: Settings) -> Path:
    return settings.host_dir() / "networks"


def server_argv(settings: Settings) -> list[str]:
    d = server_dir(settings)
    return [sys.executable, "-m", metadata_server.__name__,
            f"--root={networks_root(settings)}", f"--pid-file={d / 'server.pid'}",
            f"--log-file={d / 'server.log'}", f"--port={metadata_server.PORT}",
            f"--user={SERVER_USER}"]


def server_pid(settings: Settings) -> int | None:
    """The host's metadata server if it runs (its pid file, checked against the
    process's command line: a pid is reused once its process is gone)."""
    pid_file = server_dir(settings) / "server.pid"
    try:
        p = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return p if f"--pid-file={pid_file}".encode() in cmdline else None


def ensure_server(settings: Settings) -> int:
    server_dir(settings).mkdir(parents=True, exist_ok=True)
    running = server_pid(settings)
    if running is None:
        kernel.run(settings, server_argv(settings))  # returns once it wrote its pid file
        running = server_pid(settings)
        if running is None:
            raise kernel.NetworkCommandError("the metadata server did not start; see "
                                             f"{server_dir(settings) / 'server.log'}")
    return running


def stop_server(settings: Settings) -> None:
    """The server ended (SIGTERM, then SIGKILL), its pid file and log gone."""
    p = server_pid(settings)
    if p is not None:
        os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while Path(f"/proc/{p}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{p}").exists():
            os.kill(p, signal.SIGKILL)
    shutil.rmtree(server_dir(settings), ignore_errors=True)


def listening(settings: Settings, vni: int) -> bool:
    out = kernel.run(settings, ["ss", "-Hltn", f"sport = :{metadata_server.PORT}"]).stdout
    return f"%{kernel.bridge_name(vni)}:{metadata_server.PORT}" in out


def wait_listening(settings: Settings, pid: int, vni: int) -> None:
    """Until the server listens on the network's bridge (it rescans at SIGHUP)."""
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + LISTEN_WAIT_S
    while not listening(settings, vni):
        if time.monotonic() > deadline:
            raise kernel.NetworkCommandError(
                f"the metadata server does not listen on {kernel.bridge_name(vni)} after "
                f"{LISTEN_WAIT_S} s; see {server_dir(settings) / 'server.log'}")
        time.sleep(0.05)


# ---- the nft rule per network -------------------------------------------------------
def rule_comment(vni: int) -> str:
    return f"vmflow-metadata-{vni}"


def _rules(settings: Settings) -> list[dict[str, object]] | None:
    """The rules of vmflow's chain (None: no table)."""
    r = kernel.run(settings, ["nft", "-j", "list", "chain", "ip", TABLE, CHAIN], check=False)
    if r.returncode != 0:
        return None
    items = json.loads(r.stdout or "{}").get("nftables", [])
    return [i["rule"] for i in items if "rule" in i]


def ensure_route(settings: Settings, vni: int) -> None:
    """169.254.169.254:80 from the network's bridge goes to the server, once."""
    kernel.run(settings, ["nft", "add", "table", "ip", TABLE])
    kernel.run(settings, ["nft", "add", "chain", "ip", TABLE, CHAIN,
                          f"{{ type nat hook prerouting priority {PRIORITY} ; "
                          "policy accept ; }"])
    if any(r.get("comment") == rule_comment(vni) for r in _rules(settings) or []):
        return
    kernel.run(settings, ["nft", "add", "rule", "ip", TABLE, CHAIN,
                          "iifname", kernel.bridge_name(vni), "ip", "daddr", METADATA_IP,
                          "tcp", "dport", "80", "redirect", "to", f":{metadata_server.PORT}",
                          "comment", f'"{rule_comment(vni)}"'])


def remove_route(settings: Settings, vni: int) -> None:
    """The network's rule gone; with the last one, the table and the server too."""
    with _lock:
        rules = _rules(settings)
        for r in rules or []:
            if r.get("comment") == rule_comment(vni):
                kernel.run(settings, ["nft", "delete", "rule", "ip", TABLE, CHAIN,
                                      "handle", str(r["handle"])])
        rules = _rules(settings)
        if rules is not None and not rules:
            kernel.run(settings, ["nft", "delete", "table", "ip", TABLE])
        if not rules:
            stop_server(settings)


def route_vnis(settings: Settings) -> list[int]:
    """The networks (vni) this host routes metadata for: its rules' comments."""
    prefix = rule_comment(0)[:-1]
    return sorted(int(str(r["comment"])[len(prefix):]) for r in _rules(settings) or []
                  if str(r.get("comment", "")).startswith(prefix))


# ---- the documents ---------------------------------------------------------------------
def check(md: InstanceMetadata) -> None:
    """ValueError unless every field that names a file or a rule is well-formed."""
    uuid.UUID(md.instance_id)
    uuid.UUID(md.network_id)
    uuid.UUID(md.port_id)
    ipaddress.IPv4Address(md.fixed_ip)
    if md.public_ipv4 is not None:
        ipaddress.IPv4Address(md.public_ipv4)
    if not 1 <= md.vni <= 0xFFFFFF:
        raise ValueError(f"vni {md.vni} is outside 1..16777215")
    for doc in (md.meta_data_json, md.network_data_json):
        json.loads(doc)


def _server_gid() -> int:
    return grp.getgrnam("nogroup").gr_gid


def write_doc(settings: Settings, md: InstanceMetadata) -> Path:
    d = metadata_server.docs_dir(networks_root(settings), str(uuid.UUID(md.network_id)))
    d.mkdir(exist_ok=True)
    os.chown(d, 0, _server_gid())
    d.chmod(0o750)  # user data may hold secrets: the server's group, no one else
    f = metadata_server.doc_path(networks_root(settings), d.parent.name, md.fixed_ip)
    tmp = f.with_name(f".{f.name}.tmp")
    tmp.write_text(json.dumps(asdict(md)))
    os.chown(tmp, 0, _server_gid())
    tmp.chmod(0o640)
    tmp.rename(f)
    return f


def forget_port(settings: Settings, network_id: str, port_id: str) -> None:
    """Whatever was published for the port on the network gone (its address may be
    handed to another port next: that guest must never read this one's documents)."""
    d = metadata_server.docs_dir(networks_root(settings), str(uuid.UUID(network_id)))
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            if json.loads(f.read_text()).get("port_id") == port_id:
                f.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue


class MetadataActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _on_host(self, network_id: str, vni: int) -> None:
        """The network must be on this host (ensure_network) with this vni."""
        if not self.settings.host_netns:
            raise permanent("the metadata service lives only in a host's own network "
                            f"namespace; host {self.settings.host} has none",
                            Errors.INVALID_STATE)
        try:
            spec = json.loads((dhcp.state_dir(self.settings, network_id)
                               / "network.json").read_text())
        except ValueError as e:
            raise permanent(f"invalid metadata input: {e}", Errors.INVALID_STATE) from e
        except FileNotFoundError as e:
            raise permanent(f"network {network_id} is not on host {self.settings.host}",
                            Errors.NOT_FOUND) from e
        if spec.get("vni") != vni:
            raise permanent(f"network {network_id} has vni {spec.get('vni')} on host "
                            f"{self.settings.host}, not {vni}", Errors.INVALID_STATE)

    @activity.defn(name=HostActs.ENSURE_METADATA_ROUTE)
    def ensure_metadata_route(self, ref: NetworkRef) -> None:
        """The network's redirect rule, and the server running and listening on its
        bridge (started again if it died)."""
        self._on_host(ref.network_id, ref.vni)
        docs = metadata_server.docs_dir(networks_root(self.settings),
                                        str(uuid.UUID(ref.network_id)))
        with _lock:
            docs.mkdir(exist_ok=True)
            os.chown(docs, 0, _server_gid())
            docs.chmod(0o750)
            ensure_route(self.settings, ref.vni)
            wait_listening(self.settings, ensure_server(self.settings), ref.vni)

    @activity.defn(name=HostActs.PUBLISH_METADATA)
    def publish_metadata(self, md: InstanceMetadata) -> None:
        """The port's documents served to its address on its network (replacing what
        was there: the address is this port's now)."""
        try:
            check(md)
        except ValueError as e:
            raise permanent(f"invalid metadata input: {e}", Errors.INVALID_STATE) from e
        self._on_host(md.network_id, md.vni)
        write_doc(self.settings, md)
        self.ensure_metadata_route(NetworkRef(md.network_id, md.vni))

    @activity.defn(name=HostActs.WITHDRAW_METADATA)
    def withdraw_metadata(self, ref: MetadataRef) -> None:
        """The port's documents gone, if they are still this instance's; absent is fine."""
        try:
            uuid.UUID(ref.instance_id)
            f = metadata_server.doc_path(networks_root(self.settings),
                                         str(uuid.UUID(ref.network_id)), ref.fixed_ip)
        except ValueError as e:
            raise permanent(f"invalid metadata input: {e}", Errors.INVALID_STATE) from e
        try:
            owner = json.loads(f.read_text()).get("instance_id")
        except FileNotFoundError:
            return
        if owner == ref.instance_id:
            f.unlink(missing_ok=True)

    def all(self) -> list[Callable[..., Any]]:
        return [self.ensure_metadata_route, self.publish_metadata, self.withdraw_metadata]
