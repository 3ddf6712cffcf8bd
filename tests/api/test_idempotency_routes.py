"""Every mutating route takes Idempotency-Key (generated from the app's routes: a new
route without it fails here), and the routes that took it last answer a repeat with
the first result and make nothing new: the token, an image's update, upload and staged
import, a member's answer, a host's update, the reconciler's trigger, and a
migration's abort and force-complete. A key reused for another request is 409
IdempotencyKeyReused, and the database itself refuses a second row of one project's
key (what stops two API processes; tests/api/test_two_processes.py runs them)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import textwrap
from collections.abc import Callable

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.requests import Request
from temporalio.client import Client

from api.app import create_app
from api.services.operations import is_key_race
from tests.api.conftest import World, add_instance, session
from tests.api.test_auth import assert_error
from tests.api.test_image_hosts import stage
from tests.api.test_images import new_image, qcow2, service_headers, upload
from tests.api.test_migrations import add_migration, signals, started
from vmflow.models import Host, ImageMember, Operation, Token
from vmflow.settings import Settings
from workers import control

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": f"idem-routes-{name}"}


def rows(model: type) -> int:
    with session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def mutating_routes() -> list[tuple[str, str, Callable[..., object]]]:
    out = []
    for ctx in iter_route_contexts(create_app().routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            for method in sorted(route.methods & MUTATING):
                out.append((method, route.path_format, route.endpoint))
    return out


def test_every_mutating_route_declares_and_passes_on_the_key() -> None:
    """Declared as the header (the OpenAPI says so), and used: the endpoint passes
    `idempotency_key` on to something, not just accepts it."""
    spec = create_app().openapi()
    routes = mutating_routes()
    assert len(routes) > 50
    missing, unused = [], []
    for method, path, endpoint in routes:
        params = spec["paths"][path][method.lower()].get("parameters", [])
        if not any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params):
            missing.append(f"{method} {path}")
        tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
        used = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "idempotency_key"]
        if not used:
            unused.append(f"{method} {path}")
    assert missing == [], f"mutating routes without Idempotency-Key: {missing}"
    assert unused == [], f"mutating routes that ignore their Idempotency-Key: {unused}"


def test_the_database_keeps_one_row_per_project_and_key(world: World) -> None:
    def record(project: str) -> Operation:
        return Operation(resource_type="image", resource_id="x", action="update",
                         status="succeeded", workflow_id="", project_id=project,
                         user_id=world.alice.user_id, idempotency_key="idem-routes-db")
    with session() as s:
        s.add(record(world.alice.project_id))
        s.commit()
        s.add(record(world.alice.project_id))
        with pytest.raises(IntegrityError) as refused:
            s.commit()
        s.rollback()
        s.add(record(world.bob.project_id))  # another project's key is its own
        s.commit()
    # what a route whose commit meets it answers (the other process is still at work)
    assert is_key_race(refused.value)
    app = create_app()
    handler = app.exception_handlers[IntegrityError]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    response = asyncio.run(handler(request, refused.value))
    assert response.status_code == 409 and response.headers["retry-after"] == "1"
    assert json.loads(bytes(response.body))["error"]["type"] == "IdempotencyKeyInProgress"


# --- the routes that took the key last -----------------------------------------------------

async def test_token_repeat_gets_the_same_token(api: httpx.AsyncClient, world: World) -> None:
    body = {"username": "alice", "password": "pw-alice-secret", "project": "p1"}
    before = rows(Token)
    first = await api.post("/v1/tokens", json=body, headers=key("token"))
    assert first.status_code == 201, first.text
    again = await api.post("/v1/tokens", json=body, headers=key("token"))
    assert again.status_code == 201 and again.json() == first.json()
    assert rows(Token) == before + 1
    # the token works; without a key every request gets a new one
    token = first.json()["token"]
    assert (await api.get("/v1/servers", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 200
    other = await api.post("/v1/tokens", json=body)
    assert other.json()["token"] != token and rows(Token) == before + 2
    # a wrong password, or a key this project used for something else: nothing new
    assert_error(await api.post("/v1/tokens", headers=key("token"),
                                json={**body, "password": "wrong"}), 401)
    image = await new_image(api, world.alice, name="idem-token-key")
    r = await api.delete(f"/v1/images/{image['id']}", headers={**world.alice.h,
                                                                **key("token-other")})
    assert r.status_code == 204
    assert_error(await api.post("/v1/tokens", headers=key("token-other"), json=body), 409,
                 "IdempotencyKeyReused")
    assert rows(Token) == before + 2


async def test_image_update_repeat_changes_nothing(api: httpx.AsyncClient, world: World) -> None:
    image = await new_image(api, world.alice, name="idem-update")
    path = f"/v1/images/{image['id']}"
    first = await api.patch(path, headers={**world.alice.h, **key("img-update")},
                            json={"properties": {"a": "1"}})
    assert first.status_code == 200 and first.json()["properties"] == {"a": "1"}
    r = await api.patch(path, headers=world.alice.h, json={"properties": {"a": "2"}})
    assert r.status_code == 200
    again = await api.patch(path, headers={**world.alice.h, **key("img-update")},
                            json={"properties": {"a": "1"}})
    assert again.status_code == 200 and again.json()["properties"] == {"a": "2"}
    other = await new_image(api, world.alice, name="idem-update-2")
    assert_error(await api.patch(f"/v1/images/{other['id']}",
                                 headers={**world.alice.h, **key("img-update")},
                                 json={"name": "x"}), 409, "IdempotencyKeyReused")


@pytest.fixture(scope="module")
def good_qcow2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return qcow2(tmp_path_factory.mktemp("idem-images"))


async def test_upload_repeat_is_204_and_reads_nothing(api: httpx.AsyncClient, world: World,
                                                      good_qcow2: bytes,
                                                      vmflow_home: Settings) -> None:
    image = await new_image(api, world.alice, name="idem-upload")
    h = {**world.alice.h, **key("upload")}
    assert (await upload(api, h, image["id"], good_qcow2)).status_code == 204
    # without the key a second upload is 409; with it, the first answer
    assert (await upload(api, world.alice.h, image["id"], good_qcow2)).status_code == 409
    assert (await upload(api, h, image["id"], b"not read")).status_code == 204
    data = (await api.get(f"/v1/images/{image['id']}/file", headers=world.alice.h)).content
    assert data == good_qcow2
    assert sorted(p.name for p in vmflow_home.image_store.glob(f"{image['id']}*")) == [
        image["id"]]


async def test_import_repeat_is_204_and_imports_nothing(api: httpx.AsyncClient, world: World,
                                                        good_qcow2: bytes,
                                                        vmflow_home: Settings) -> None:
    service = {**service_headers(vmflow_home), **key("import")}
    image = await new_image(api, world.alice, name="idem-import")
    stage(vmflow_home, image["id"], good_qcow2)
    assert (await api.post(f"/v1/images/{image['id']}/import", headers=service)
            ).status_code == 204
    # staged again (a host that wrote it twice): the repeat does not take it
    staged = stage(vmflow_home, image["id"], b"second copy")
    assert (await api.post(f"/v1/images/{image['id']}/import", headers=service)
            ).status_code == 204
    assert staged.read_bytes() == b"second copy"
    staged.unlink()


async def test_member_answer_repeat_changes_nothing(api: httpx.AsyncClient,
                                                    world: World) -> None:
    image = await new_image(api, world.alice, name="idem-member", visibility="shared")
    r = await api.post(f"/v1/images/{image['id']}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 201, r.text
    path = f"/v1/images/{image['id']}/members/{world.bob.project_id}"
    h = {**world.bob.h, **key("member")}
    first = await api.put(path, headers=h, json={"status": "accepted"})
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    r = await api.put(path, headers=world.bob.h, json={"status": "rejected"})
    assert r.status_code == 200
    again = await api.put(path, headers=h, json={"status": "accepted"})
    assert again.status_code == 200 and again.json()["status"] == "rejected"
    with session() as s:
        assert len(list(s.exec(select(ImageMember).where(
            ImageMember.image_id == image["id"])))) == 1


async def test_host_update_repeat_changes_nothing(api: httpx.AsyncClient, world: World) -> None:
    with session() as s:
        if s.get(Host, "idem-h") is None:
            s.add(Host(name="idem-h", hostname="idem-h", vcpus=4, ram_mb=4096, disk_gb=10))
            s.commit()
    h = {**world.admin.h, **key("host")}
    first = await api.put("/v1/hosts/idem-h", headers=h,
                          json={"status": "disabled", "disabled_reason": "maintenance"})
    assert first.status_code == 200 and first.json()["status"] == "disabled"
    assert (await api.put("/v1/hosts/idem-h", headers=world.admin.h,
                          json={"status": "enabled"})).status_code == 200
    again = await api.put("/v1/hosts/idem-h", headers=h,
                          json={"status": "disabled", "disabled_reason": "maintenance"})
    assert again.status_code == 200 and again.json()["status"] == "enabled"


async def test_reconcile_trigger_repeat_runs_nothing(api: httpx.AsyncClient, world: World,
                                                     temporal: Client,
                                                     vmflow_home: Settings) -> None:
    path = "/v1/admin/reconcile-ledger"
    h = {**world.admin.h, **key("reconcile")}
    # no schedule yet: 503, and the key is free for the retry
    assert_error(await api.post(path, headers=h), 503, "ScheduleMissing")
    await control.ensure_ledger_reconcile_schedule(temporal, vmflow_home)
    handle = temporal.get_schedule_handle("reconcile-ledger")
    try:
        first = await api.post(path, headers=h)
        assert first.status_code == 202, first.text
        actions = (await handle.describe()).info.num_actions
        again = await api.post(path, headers=h)
        assert again.status_code == 202 and again.json() == first.json()
        assert (await handle.describe()).info.num_actions == actions
    finally:
        await handle.delete()


async def test_migration_signals_repeat_send_nothing(api: httpx.AsyncClient, world: World,
                                                     temporal: Client) -> None:
    with session() as s:
        for name in ("h1", "h2"):
            if s.get(Host, name) is None:
                s.add(Host(name=name, hostname=name, vcpus=8, ram_mb=16384, disk_gb=100))
        s.commit()
    inst, op_id = await started(api, world, "idem-lm")
    m = add_migration(inst, operation_id=op_id)
    base = f"/v1/servers/{inst.id}/migrations/{m.id}"
    for _ in range(2):
        r = await api.post(f"{base}/action", headers={**world.admin.h, **key("force")},
                           json={"force_complete": None})
        assert r.status_code == 202, r.text
        r = await api.delete(base, headers={**world.admin.h, **key("abort")})
        assert r.status_code == 202, r.text
    assert await signals(temporal, inst.id) == ["force_complete", "abort"]
    # a refused signal keeps no key: the same key works once it is allowed
    idle = add_instance(world, name="idem-lm-idle")
    orphan = add_migration(idle)
    assert_error(await api.delete(f"/v1/servers/{idle.id}/migrations/{orphan.id}",
                                  headers={**world.admin.h, **key("abort-idle")}), 409)
    with session() as s:
        assert s.exec(select(Operation).where(
            Operation.idempotency_key == "idem-routes-abort-idle")).first() is None

