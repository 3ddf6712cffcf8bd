"""Real parts for the API tests: a Temporal dev server, a database (SQLite in a temporary
VMFLOW_HOME, or one of its own on the run's PostgreSQL with VMFLOW_TEST_DATABASE=postgresql)
prepared by bootstrap(), and the app with its lifespan run. Package-scoped,
so the environment they set (VMFLOW_*) is restored before other test packages run.

No worker polls the `control` queue here, so every workflow the API starts stays
Running: that is what makes the one-operation-at-a-time 409 observable.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.app import create_app
from tests.conftest import assert_on_test_database, bearer, new_database_url, temporal_dev_server
from tests.postgres import Postgres
from vmflow import db, settings
from vmflow.bootstrap import bootstrap
from vmflow.identity import hash_token
from vmflow.models import Flavor, Image, Instance, Operation, Token
from vmflow.temporal import connect


@pytest.fixture(scope="package")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with temporal_dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


def use_settings(env: dict[str, str]) -> None:
    os.environ.update(env)
    settings.get_settings.cache_clear()
    db.engine_for.cache_clear()


@pytest.fixture(scope="package")
def vmflow_home(tmp_path_factory: pytest.TempPathFactory, temporal_address: str,
                test_postgres: Postgres | None) -> Iterator[settings.Settings]:
    home = tmp_path_factory.mktemp("vmflow-home")
    env = {"VMFLOW_HOME": str(home), "VMFLOW_TEMPORAL_ADDRESS": temporal_address,
           "VMFLOW_TEMPORAL_NAMESPACE": "default",
           "VMFLOW_DATABASE_URL": new_database_url(test_postgres, "api"),
           # no tiny guest: images the tests need are inserted as rows
           "VMFLOW_GUEST_CACHE": str(home / "no-guest")}
    saved = {k: os.environ.get(k) for k in env}
    use_settings(env)
    s = settings.get_settings()
    bootstrap(s)
    assert_on_test_database(s)
    yield s
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    settings.get_settings.cache_clear()
    db.engine_for.cache_clear()


@pytest.fixture(scope="package")
async def api(vmflow_home: settings.Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with app.router.lifespan_context(app):
        assert app.state.temporal is not None, "the lifespan did not connect to Temporal"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vmflow") as c:
            yield c


@pytest.fixture(scope="package")
async def temporal(vmflow_home: settings.Settings) -> Client:
    return await connect(vmflow_home)


def session() -> Session:
    return Session(db.get_engine(), expire_on_commit=False)


def counts() -> tuple[int, int]:
    """(instances, operations) in the DB: bad requests must leave both unchanged."""
    with session() as s:
        return (s.exec(select(func.count()).select_from(Instance)).one(),
                s.exec(select(func.count()).select_from(Operation)).one())




@dataclass(frozen=True)
class Caller:
    token: str
    project_id: str
    user_id: str

    @property
    def h(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass(frozen=True)
class World:
    admin: Caller
    alice: Caller  # member of p1
    carol: Caller  # another member of p1
    rita: Caller  # reader of p1
    bob: Caller  # member of p2
    image: Image  # active, public
    private_p2: Image  # active, private to p2


async def make_caller(api: httpx.AsyncClient, admin_h: dict[str, str], user: str,
                      project: str, role: str) -> Caller:
    r = await api.post("/v1/users", headers=admin_h,
                       json={"name": user, "password": f"pw-{user}-secret", "project": project,
                             "role": role})
    assert r.status_code == 201, r.text
    r = await api.post("/v1/tokens", json={"username": user, "password": f"pw-{user}-secret",
                                           "project": project})
    assert r.status_code == 201, r.text
    body = r.json()
    return Caller(body["token"], body["project_id"], body["user_id"])


def add_image(name: str, status: str = "active", visibility: str = "public",
              owner: str | None = None) -> Image:
    image = Image(name=name, status=status, disk_format="qcow2", visibility=visibility,
                  owner=owner, size=1 << 20)
    with session() as s:
        s.add(image)
        s.commit()
    return image


@pytest.fixture(scope="package")
async def world(api: httpx.AsyncClient, vmflow_home: settings.Settings) -> World:
    token = vmflow_home.admin_token_file.read_text().strip()
    with session() as s:
        row = s.get(Token, hash_token(token))
        assert row is not None
        admin = Caller(token, row.project_id, row.user_id)
    for name in ("p1", "p2"):
        r = await api.post("/v1/projects", headers=admin.h, json={"name": name})
        assert r.status_code == 201, r.text
    alice = await make_caller(api, admin.h, "alice", "p1", "member")
    carol = await make_caller(api, admin.h, "carol", "p1", "member")
    rita = await make_caller(api, admin.h, "rita", "p1", "reader")
    bob = await make_caller(api, admin.h, "bob", "p2", "member")
    return World(admin=admin, alice=alice, carol=carol, rita=rita, bob=bob,
                 image=add_image(name="cirros"),
                 private_p2=add_image(name="p2-secret", visibility="private",
                                      owner=bob.project_id))


def add_instance(world: World, owner: Caller | None = None, vm_state: str = "active",
                 task_state: str | None = None, **fields: Any) -> Instance:
    """An instance row as a finished launch leaves it (host set, no workflow running),
    written directly: the state matrix needs every vm_state without running guests."""
    owner = owner or world.alice
    with session() as s:
        flavor = s.exec(select(Flavor).where(Flavor.name == "m1.tiny")).one()
        inst = Instance(name=fields.pop("name", f"row-{vm_state}"), project_id=owner.project_id,
                        user_id=owner.user_id, image_id=world.image.id, flavor_id=flavor.id,
                        host="h1", vm_state=vm_state, task_state=task_state, **fields)
        s.add(inst)
        s.commit()
    return inst


def flavor_id(name: str) -> str:
    with session() as s:
        return s.exec(select(Flavor).where(Flavor.name == name)).one().id


def instance_row(instance_id: str) -> Instance:
    with session() as s:
        inst = s.get(Instance, instance_id)
    assert inst is not None
    return inst


def set_state(instance_id: str, vm_state: str, task_state: str | None = None) -> None:
    with session() as s:
        inst = s.get(Instance, instance_id)
        assert inst is not None
        inst.vm_state, inst.task_state = vm_state, task_state
        s.add(inst)
        s.commit()


def operations_of(instance_id: str) -> list[Operation]:
    with session() as s:
        return list(s.exec(select(Operation).where(Operation.resource_id == instance_id)
                           .order_by(col(Operation.started_at))))


async def create_server(api: httpx.AsyncClient, who: Caller, name: str = "vm",
                        image: str = "cirros", flavor: str = "m1.tiny",
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await api.post("/v1/servers", headers={**who.h, **(headers or {})},
                       json={"name": name, "image": image, "flavor": flavor})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


# a valid public key to import (ssh-keygen -l: SHA256:4W3bpP89/mPNHBZtjx1KqE+ibcK6tOgHa6RZN7ERU5c)
ED25519_PUB = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKbJK5UhQ12o9fMKdhvvq9xO6BTr5H84eX3Lsdrw7jGp"
               " test@vmflow")
ED25519_FP = "SHA256:4W3bpP89/mPNHBZtjx1KqE+ibcK6tOgHa6RZN7ERU5c"


async def ensure_keypair(api: httpx.AsyncClient, who: Caller, name: str) -> None:
    """`who` has a keypair called `name` (imported once per test package)."""
    r = await api.post("/v1/keypairs", headers=who.h,
                       json={"name": name, "public_key": ED25519_PUB})
    assert r.status_code in (201, 409), r.text
