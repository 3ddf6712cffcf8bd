"""The same schema, bootstrap and claims on a real PostgreSQL (VMFLOW_DATABASE_URL)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from activities.control.instances import ControlActivities
from tests.postgres import private_postgres
from vmflow import db
from vmflow.bootstrap import bootstrap
from vmflow.contracts.instances import ClaimRequest
from vmflow.ip_allocation import PortSpec, add_port
from vmflow.ipam import IpamError
from vmflow.models import Allocation, Flavor, Host, Image, Project, Token
from vmflow.network_models import IpAllocation, Network, Subnet
from vmflow.settings import Settings

RACERS = 12


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with private_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def pg_settings(pg_url: str, tiny_guest: Path) -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp(prefix="vmflow-pghome-", dir="/var/tmp"))
    yield Settings(home=home, database_url=pg_url, guest_cache=tiny_guest)
    shutil.rmtree(home, ignore_errors=True)


def test_bootstrap_on_postgres_is_idempotent(pg_settings: Settings) -> None:
    bootstrap(pg_settings)
    bootstrap(pg_settings)
    with Session(db.engine_for(pg_settings.db_url)) as s:
        names = {f.name for f in s.exec(select(Flavor))}
        assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge", "t1.micro"} <= names
        # one admin token and one service token (hosts), however often it runs
        assert sorted(t.role for t in s.exec(select(Token))) == ["admin", "service"]
        tiny = s.exec(select(Image).where(Image.name == "tiny")).one()
        assert tiny.status == "active" and tiny.properties["hw_qemu_guest_agent"] == "yes"


def test_concurrent_claims_for_the_last_slot_admit_exactly_one(pg_settings: Settings) -> None:
    bootstrap(pg_settings)
    with Session(db.engine_for(pg_settings.db_url)) as s:
        # room for exactly one 1-vCPU guest: 1 core x 4.0 ratio, 3 already used
        s.add(Host(name="pghv", vcpus=1, ram_mb=8192, disk_gb=100, traits=[]))
        s.flush()
        s.add(Allocation(instance_id="existing", host="pghv", vcpus=3, ram_mb=256, disk_gb=1))
        s.commit()
    acts = ControlActivities(pg_settings, client=None)  # type: ignore[arg-type]

    start = threading.Barrier(RACERS)

    def claim(i: int) -> str:
        start.wait()  # all at once, so their reads and writes overlap
        try:
            acts.claim(ClaimRequest(f"racer-{i}", "pghv", 1, 256, 1))
            return "won"
        except ApplicationError as e:
            assert e.type == "NoCapacity"
            return "refused"

    with ThreadPoolExecutor(RACERS) as ex:
        results = list(ex.map(claim, range(RACERS)))
    assert sorted(results) == ["refused"] * (RACERS - 1) + ["won"]
    with Session(db.engine_for(pg_settings.db_url)) as s:
        assert len(s.exec(select(Allocation).where(Allocation.host == "pghv")).all()) == 2


def test_concurrent_port_allocations_never_share_an_address(pg_settings: Settings) -> None:
    """Racers for a pool of five addresses, each in its own session on PostgreSQL: five
    ports with five distinct addresses, the rest refused (vmflow.ip_allocation)."""
    bootstrap(pg_settings)
    engine = db.engine_for(pg_settings.db_url)
    with Session(engine) as s:
        project = Project(name="pg-net")
        s.add(project)
        s.flush()
        net = Network(project_id=project.id, segmentation_id=4242)
        s.add(net)
        s.flush()
        s.add(Subnet(network_id=net.id, project_id=project.id, cidr="10.9.0.0/24",
                     gateway_ip="10.9.0.1",
                     allocation_pools=[{"start": "10.9.0.2", "end": "10.9.0.6"}]))
        s.commit()
        net_id, project_id = net.id, project.id

    start = threading.Barrier(RACERS)

    def allocate(_: int) -> str:
        with Session(engine) as s:
            start.wait()  # all at once, so their reads and writes overlap
            try:
                _, ips = add_port(s, PortSpec(network_id=net_id, project_id=project_id))
                s.commit()
                return ips[0].ip_address
            except IpamError as e:
                s.rollback()
                assert e.type == "IpAddressGenerationFailure"
                return "refused"

    with ThreadPoolExecutor(RACERS) as ex:
        results = list(ex.map(allocate, range(RACERS)))
    won = sorted(r for r in results if r != "refused")
    assert won == [f"10.9.0.{i}" for i in range(2, 7)]
    assert results.count("refused") == RACERS - 5
    with Session(engine) as s:
        stored = s.exec(select(IpAllocation.ip_address).where(
            IpAllocation.network_id == net_id)).all()
    assert sorted(stored) == won
