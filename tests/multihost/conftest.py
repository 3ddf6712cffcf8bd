"""The many-hosts tier: the embedded stack with VMFLOW_HOSTS=2, so two hypervisor hosts
run on this machine, each its own libvirtd in its own mount and network namespace,
joined by an underlay (vmflow.hostbed), each with its own worker on hv.<host>.
Everything goes through the API, as an operator's would.

The stack keeps its state in a PostgreSQL of its own (as the fault tier's does), so a
test can kill the database mid-operation: fixture `postgres` (tests.postgres.Postgres,
kill() and start()), started before the stack and stopped after it.

Fixtures: `bed` (the stack's Settings), `api` (an admin client), `hosts` (the two host
names, first the stack's own), `conn(host)` (a libvirt connection to one host),
`net_acts(host)` (a host's network activities, in-process), `network` (a network made
through the API from the test module's NET_NAME and CIDR), `two_guests` (one ACTIVE
guest on each host), and the helpers below; tests/integration/conftest.py has the
generic ones (create_server, wait_operation, action, delete_server)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.network.activities import NetworkActivities
from tests.conftest import bearer, qemu_home
from tests.histories.record import record as record_histories
from tests.home_cleanup import teardown_home
from tests.integration import guest
from tests.integration.conftest import create_server, delete_server, wait_operation
from tests.postgres import Postgres, accepts, gone, postgres_server, postmaster_pid
from vmflow import hostbed, stack
from vmflow.contracts.networks import NetworkRef
from vmflow.processes import free_port
from vmflow.settings import Settings

# one prefix per test run, so concurrent runs on one machine never touch each other's guests
PREFIX = f"vmflowmh{os.getpid()}-"
# ... and its own host names: they name the hosts' network namespaces, which a
# concurrent run's bed (or its `down`) must never share
HOST = f"mh{os.getpid()}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The bed's database server, which tests may kill and start again; stopped and
    its data directory removed after the bed is down."""
    with postgres_server("vmflow-mhpg-") as pg:
        yield pg
        pid = postmaster_pid(pg)  # None: a test left it down
    # pg_ctl stop returns once the pid file is gone, a moment before the process is
    alive = pid is not None and not gone(pid)
    assert not alive and not accepts(pg.port) and not pg.data.exists(), (
        f"PostgreSQL left running (pid {pid}, port {pg.port}) or its data {pg.data}")


@pytest.fixture(scope="session")
def bed(tiny_guest: Path, postgres: Postgres) -> Iterator[Settings]:
    home = qemu_home("mh")
    s = Settings(home=home, api_port=free_port(), temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port(), host=HOST, hosts=2, storage_hosts=1,
                 database_url=postgres.url,
                 domain_prefix=PREFIX, guest_cache=tiny_guest, agent_timeout=60,
                 stop_timeout=30, reboot_timeout=10, power_sync_interval=10,
                 host_down_after=10,  # a host whose worker stops is down within seconds
                 fault_points=True)  # inert until a kill-matrix cell arms one
    guest.HOSTS[:] = [h.libvirt_uri for h in hostbed.bed(s)]  # guest.sh finds the guest
    try:
        stack.up(s)
    except BaseException:
        stack.down(s)
        teardown_home(home)
        raise
    yield s
    record_histories(s.temporal_address, s.temporal_namespace)  # with VMFLOW_RECORD_HISTORIES
    daemons = [pid for h in hostbed.bed(s) for d in ("libvirtd", "virtlogd")
               if (pid := h.pid(d)) is not None]
    stack.down(s)  # powers both hosts off, deletes their namespaces
    left = [n for n in (*[h.netns for h in hostbed.bed(s)], hostbed.switch_netns(s),
                        hostbed.outside_netns(s))
            if Path("/run/netns", n).exists()]
    alive = [pid for pid in daemons if Path(f"/proc/{pid}").exists()]
    teardown_home(home)
    assert not left and not alive, f"make down left namespaces {left}, daemons {alive}"


@pytest.fixture(scope="session")
def api(bed: Settings) -> Iterator[httpx.Client]:
    token = bed.admin_token_file.read_text().strip()
    with httpx.Client(base_url=bed.base_url, timeout=30, headers=bearer(token)) as client:
        wait_hosts_up(client, hostbed.host_names(bed))
        yield client


def wait_hosts_up(api: httpx.Client, names: list[str], timeout: float = 90) -> None:
    """Workers register their host and heartbeat shortly after they start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = {h["name"]: h["state"] for h in api.get("/v1/hosts").json()["hosts"]}
        if all(shown.get(n) == "up" for n in names):
            return
        time.sleep(0.5)
    raise AssertionError(f"hosts {names} not all up after {timeout}s: {shown}")


@pytest.fixture(scope="session")
def hosts(bed: Settings) -> list[str]:
    return hostbed.host_names(bed)


@pytest.fixture(scope="session")
def conn(bed: Settings) -> Iterator[Callable[[str], libvirt.virConnect]]:
    """A libvirt connection to one host of the bed, as `virsh -c <libvirt_uri>` has."""
    opened: dict[str, libvirt.virConnect] = {}

    def get(host: str) -> libvirt.virConnect:
        if host in opened:
            try:  # a host powered off and on (evacuate) left a dead socket behind
                opened[host].getLibVersion()
            except libvirt.libvirtError:
                del opened[host]
        if host not in opened:
            opened[host] = libvirt.open(hostbed.host(bed, host).libvirt_uri)
        return opened[host]

    yield get
    for c in opened.values():
        c.close()


def domains_of(conn: libvirt.virConnect) -> set[str]:
    """UUIDs of the instances defined on one host (running or not)."""
    return {d.UUIDString() for d in conn.listAllDomains() if d.name().startswith(PREFIX)}


def launch(api: httpx.Client, name: str, flavor: str = "t1.micro") -> dict[str, Any]:
    """A server launched to ACTIVE; returns its API view (with its host)."""
    sid, op_id = create_server(api, name, flavor=flavor)
    op = wait_operation(api, op_id)
    assert op["status"] == "succeeded", op
    server: dict[str, Any] = api.get(f"/v1/servers/{sid}").json()
    assert server["status"] == "ACTIVE", server
    return server


@pytest.fixture
def net_acts(bed: Settings) -> Callable[[str], NetworkActivities]:
    """The network activities of one host, as its worker has them."""
    made: dict[str, NetworkActivities] = {}

    def get(name: str) -> NetworkActivities:
        if name not in made:
            made[name] = host_network_activities(bed, name)
        return made[name]

    return get


def host_network_activities(bed: Settings, name: str) -> NetworkActivities:
    h = hostbed.host(bed, name)
    s = bed.model_copy(update=dict(host=name, host_netns=h.netns, migration_address=h.address,
                                   libvirt_uri=h.libvirt_uri))
    return NetworkActivities(s, Connection(h.libvirt_uri))


def remove_from_hosts(bed: Settings, network: dict[str, Any]) -> None:
    """A network (its API view) gone from every host of the bed, its metadata route
    too: deleting it through the API leaves that to the reconciler."""
    ref = NetworkRef(network["id"], network["provider:segmentation_id"])
    for name in hostbed.host_names(bed):
        host_network_activities(bed, name).remove_network(ref)


@pytest.fixture
def network(request: pytest.FixtureRequest, api: httpx.Client,
            bed: Settings) -> Iterator[dict[str, Any]]:
    """A network with a subnet (the module's NET_NAME and CIDR), made through the API;
    at the end gone from the hosts (nothing removes a network from a host yet but the
    reconciler) and the API."""
    net = api.post("/v1/networks", json={"name": request.module.NET_NAME})
    assert net.status_code == 201, net.text
    body: dict[str, Any] = net.json()
    sub = api.post("/v1/subnets", json={"network_id": body["id"], "cidr": request.module.CIDR})
    assert sub.status_code == 201, sub.text
    yield body
    remove_from_hosts(bed, body)
    assert api.delete(f"/v1/networks/{body['id']}").status_code == 204


@pytest.fixture
def two_guests(api: httpx.Client, hosts: list[str]) -> Iterator[dict[str, str]]:
    """host -> server id: one ACTIVE guest on each host."""
    ids = [launch(api, "net-a")["id"], launch(api, "net-b")["id"]]
    try:
        placed = {api.get(f"/v1/servers/{sid}").json()["host"]: sid for sid in ids}
        assert set(placed) == set(hosts)  # the weigher spreads them
        yield placed
    finally:
        for sid in ids:
            assert delete_server(api, sid)["status"] == "succeeded"
