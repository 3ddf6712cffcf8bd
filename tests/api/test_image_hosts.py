"""Images and the hosts: the service token fetches and uploads images and reaches
nothing else; a host that shares the store's file system imports its staged copy
(inspected, hashed once or not at all, hostile data refused)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import World
from tests.api.test_images import (
    active_image,
    new_image,
    qcow2,
    service_headers,
    stored,
    upload,
)
from tests.hostile_images import Hostile, build
from vmflow.settings import Settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="module")
def good_qcow2(files: Path) -> bytes:
    return qcow2(files)


@pytest.fixture(scope="module")
def service(vmflow_home: Settings) -> dict[str, str]:
    return service_headers(vmflow_home)


@pytest.fixture(scope="module")
def corpus(files: Path) -> list[Hostile]:
    return build(files / "hostile")


# --- the hosts' service token ------------------------------------------------------------

async def test_the_service_token_fetches_and_uploads_images_and_nothing_else(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, service: dict[str, str],
        good_qcow2: bytes) -> None:
    assert os.stat(vmflow_home.service_token_file).st_mode & 0o777 == 0o600
    private = await active_image(api, world.bob, good_qcow2)
    r = await api.get(f"/v1/images/{private['id']}", headers=service)
    assert r.status_code == 200
    r = await api.get(f"/v1/images/{private['id']}/file", headers=service)
    assert r.status_code == 200 and r.content == good_qcow2

    queued = await new_image(api, world.alice, name="snapshot-target")
    assert (await upload(api, service, queued["id"], good_qcow2)).status_code == 204
    assert (await upload(api, service, queued["id"], good_qcow2)).status_code == 409

    refused = [
        ("GET", "/v1/images", None), ("GET", "/v1/servers", None),
        ("GET", "/v1/flavors", None), ("GET", f"/v1/images/{private['id']}/members", None),
        ("POST", "/v1/images", {"name": "x", "disk_format": "raw", "container_format": "bare"}),
        ("DELETE", f"/v1/images/{private['id']}", None),
        ("POST", f"/v1/images/{private['id']}/members", {"member": world.alice.project_id}),
        ("POST", "/v1/servers", {"name": "x", "image": private["id"], "flavor": "m1.tiny"}),
        ("POST", "/v1/projects", {"name": "svc-made"}),
    ]
    for method, path, body in refused:
        r = await api.request(method, path, headers=service, json=body)
        assert r.status_code == 403, (method, path, r.text)
    r = await api.post("/v1/tokens", json={"username": "vmflow-service", "password": "",
                                           "project": "service"})
    assert r.status_code in (400, 401)  # no password: the token file is the only way in


# --- staged import (a host that shares the store's file system) ----------------------

def stage(s: Settings, image_id: str, data: bytes) -> Path:
    path = s.image_store / "staging" / image_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_a_host_imports_staged_data_once_inspected_and_hashed(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, service: dict[str, str],
        good_qcow2: bytes) -> None:
    image = await new_image(api, world.alice, name="staged-snapshot")
    staged = stage(vmflow_home, image["id"], good_qcow2)
    r = await api.post(f"/v1/images/{image['id']}/import", headers=service)
    assert r.status_code == 204, r.text
    shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
    assert shown["status"] == "active" and shown["size"] == len(good_qcow2)
    assert shown["checksum"] == hashlib.sha256(good_qcow2).hexdigest()
    assert not staged.exists() and stored(vmflow_home, image["id"]) == [image["id"]]
    r = await api.get(f"/v1/images/{image['id']}/file", headers=world.alice.h)
    assert r.content == good_qcow2
    # a retry of an import that went through is a success, and changes nothing
    assert (await api.post(f"/v1/images/{image['id']}/import", headers=service)).status_code == 204


async def test_an_import_takes_the_sha256_the_host_computed_while_writing(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, service: dict[str, str],
        good_qcow2: bytes) -> None:
    """A host that hashed its copy as it wrote it sends the sha256 along: a malformed
    one is a 400 that changes nothing; a well-formed one is the image's checksum."""
    image = await new_image(api, world.alice, name="hashed-by-host")
    staged = stage(vmflow_home, image["id"], good_qcow2)
    url = f"/v1/images/{image['id']}/import"
    for bad in ("", "ABC", "g" * 64, hashlib.sha256(good_qcow2).hexdigest().upper()):
        r = await api.post(url, headers={**service, "X-Image-Checksum": bad})
        assert r.status_code == 400 and "X-Image-Checksum" in r.text, r.text
        shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
        assert shown["status"] == "queued" and staged.exists()
    digest = hashlib.sha256(good_qcow2).hexdigest()
    r = await api.post(url, headers={**service, "X-Image-Checksum": digest})
    assert r.status_code == 204, r.text
    shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
    assert (shown["status"], shown["checksum"], shown["size"]) == (
        "active", digest, len(good_qcow2))
    assert not staged.exists() and stored(vmflow_home, image["id"]) == [image["id"]]


async def test_only_hosts_import_and_only_what_is_staged(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, service: dict[str, str],
        good_qcow2: bytes, files: Path) -> None:
    image = await new_image(api, world.alice, name="not-staged")
    url = f"/v1/images/{image['id']}/import"
    r = await api.post(url, headers=service)
    assert r.status_code == 404 and r.json()["error"]["type"] == "ImageNotStaged"
    staged = stage(vmflow_home, image["id"], good_qcow2)
    for who in (world.alice, world.admin):
        r = await api.post(url, headers=who.h)
        assert r.status_code == 403, r.text
    assert staged.exists()
    staged.unlink()
    # a symlink planted in the staging area is never followed into a host file
    secret = files / "staged-secret"
    secret.write_bytes(good_qcow2)
    staged.symlink_to(secret)
    r = await api.post(url, headers=service)
    assert r.status_code == 404 and r.json()["error"]["type"] == "ImageNotStaged"
    staged.unlink()
    shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
    assert shown["status"] == "queued" and stored(vmflow_home, image["id"]) == []


async def test_staged_hostile_data_ends_in_error_with_nothing_kept(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, service: dict[str, str],
        corpus: list[Hostile]) -> None:
    for h in corpus[:3]:
        image = await new_image(api, world.alice, name=h.name, disk_format=h.declared)
        staged = stage(vmflow_home, image["id"], h.path.read_bytes())
        r = await api.post(f"/v1/images/{image['id']}/import", headers=service)
        assert r.status_code == 400 and h.reason in r.json()["error"]["message"], r.text
        shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
        assert shown["status"] == "error" and shown["checksum"] is None
        assert not staged.exists() and stored(vmflow_home, image["id"]) == []
