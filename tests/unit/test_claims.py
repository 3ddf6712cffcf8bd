"""Claims stay atomic under concurrency on SQLite: racers for the last room of a host
are admitted exactly as far as the room goes, never past it (PostgreSQL: the same
race in tests/integration/test_postgres.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from activities.control.instances import ControlActivities
from vmflow import db
from vmflow.contracts.instances import ClaimRequest
from vmflow.models import Allocation, Host
from vmflow.settings import Settings

RACERS = 12


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/claims.db")
    db.upgrade(s.db_url)
    return s


def race(acts: ControlActivities, host: str, vcpus: int) -> list[str]:
    start = threading.Barrier(RACERS)

    def claim(i: int) -> str:
        start.wait()  # all at once, so their reads and writes overlap
        try:
            acts.claim(ClaimRequest(f"racer-{host}-{i}", host, vcpus, 256, 1))
            return "won"
        except ApplicationError as e:
            assert e.type == "NoCapacity", e
            return "refused"

    with ThreadPoolExecutor(RACERS) as ex:
        return sorted(ex.map(claim, range(RACERS)))


@pytest.mark.parametrize("room", [1, 5])
def test_concurrent_claims_never_pass_the_room_on_sqlite(settings: Settings, room: int) -> None:
    name = f"hv{room}"
    with Session(db.engine_for(settings.db_url)) as s:
        # 2 cores x 4.0 ratio = 8 vCPUs, `room` of them free
        s.add(Host(name=name, vcpus=2, ram_mb=65536, disk_gb=100, traits=[]))
        s.flush()
        s.add(Allocation(instance_id=f"existing-{name}", host=name, vcpus=8 - room,
                         ram_mb=256, disk_gb=1))
        s.commit()
    acts = ControlActivities(settings, client=None)  # type: ignore[arg-type]
    assert race(acts, name, 1) == ["refused"] * (RACERS - room) + ["won"] * room
    with Session(db.engine_for(settings.db_url)) as s:
        used = sum(a.vcpus for a in s.exec(select(Allocation).where(Allocation.host == name)))
    assert used == 8


def test_a_repeated_claim_for_the_same_host_is_kept_once(settings: Settings) -> None:
    with Session(db.engine_for(settings.db_url)) as s:
        s.add(Host(name="hv", vcpus=2, ram_mb=65536, disk_gb=100, traits=[]))
        s.commit()
    acts = ControlActivities(settings, client=None)  # type: ignore[arg-type]
    acts.claim(ClaimRequest("i1", "hv", 8, 256, 1))
    acts.claim(ClaimRequest("i1", "hv", 8, 256, 1))  # at least once: the retry is a no-op
    with Session(db.engine_for(settings.db_url)) as s:
        assert [a.instance_id for a in s.exec(select(Allocation))] == ["i1"]
