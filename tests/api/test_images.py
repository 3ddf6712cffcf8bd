"""The image service through the API: create, streamed upload with inspection,
download, delete; hostile files end in error with their reason and leave nothing in
the store; no host file ever becomes image data; visibility and members with
acceptance; the hosts' service token reaches images and nothing else."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Caller, World, bearer, counts, create_server
from tests.hostile_images import Hostile, build
from vmflow.settings import Settings, get_settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="module")
def good_qcow2(files: Path) -> bytes:
    path = files / "good.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def service(vmflow_home: Settings) -> dict[str, str]:
    return bearer(vmflow_home.service_token_file.read_text().strip())


async def new_image(api: httpx.AsyncClient, who: Caller, name: str = "img",
                    disk_format: str = "qcow2", **body: Any) -> dict[str, Any]:
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    r = await api.post("/v1/images", headers=who.h, json={
        "name": name, "disk_format": disk_format, "container_format": container, **body})
    assert r.status_code == 201, r.text
    image: dict[str, Any] = r.json()
    return image


async def upload(api: httpx.AsyncClient, headers: dict[str, str], image_id: str,
                 data: bytes) -> httpx.Response:
    return await api.put(f"/v1/images/{image_id}/file", headers=headers, content=data)


async def active_image(api: httpx.AsyncClient, who: Caller, data: bytes,
                       **body: Any) -> dict[str, Any]:
    image = await new_image(api, who, **body)
    r = await upload(api, who.h, image["id"], data)
    assert r.status_code == 204, r.text
    return image


def stored(s: Settings, image_id: str) -> list[str]:
    return sorted(p.name for p in s.image_store.glob(f"{image_id}*"))


# --- create, upload, download ----------------------------------------------------------

async def test_round_trip_with_checksum(api: httpx.AsyncClient, world: World,
                                        vmflow_home: Settings, good_qcow2: bytes) -> None:
    image = await new_image(api, world.alice, properties={"hw_qemu_guest_agent": "yes"})
    assert (image["status"], image["owner"], image["visibility"]) == (
        "queued", world.alice.project_id, "private")
    assert image["file"] == f"/v1/images/{image['id']}/file"
    r = await upload(api, world.alice.h, image["id"], good_qcow2)
    assert r.status_code == 204, r.text
    shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
    digest = hashlib.sha256(good_qcow2).hexdigest()
    assert (shown["status"], shown["size"], shown["checksum"], shown["fault"]) == (
        "active", len(good_qcow2), digest, None)
    assert stored(vmflow_home, image["id"]) == [image["id"]]  # no .part left
    r = await api.get(f"/v1/images/{image['id']}/file", headers=world.alice.h)
    assert r.status_code == 200
    assert r.content == good_qcow2 and r.headers["X-Image-Checksum"] == digest
    assert "location" not in shown  # store paths are not the users' business


async def test_a_second_upload_is_409_and_changes_nothing(api: httpx.AsyncClient, world: World,
                                                          good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2)
    r = await upload(api, world.alice.h, image["id"], b"\0" * 4096)
    assert r.status_code == 409 and r.json()["error"]["type"] == "ImageNotQueued"
    r = await api.get(f"/v1/images/{image['id']}/file", headers=world.alice.h)
    assert r.content == good_qcow2


async def test_a_queued_image_has_no_data_to_download(api: httpx.AsyncClient,
                                                      world: World) -> None:
    image = await new_image(api, world.alice)
    r = await api.get(f"/v1/images/{image['id']}/file", headers=world.alice.h)
    assert r.status_code == 409 and r.json()["error"]["type"] == "ImageNotActive"


async def test_raw_kernel_and_ramdisk_formats(api: httpx.AsyncClient, world: World) -> None:
    kernel = await active_image(api, world.alice, b"\x7fELF" + b"\0" * 8192, disk_format="aki")
    ramdisk = await active_image(api, world.alice, b"\x1f\x8b" + b"\0" * 8192,
                                 disk_format="ari")
    root = await new_image(api, world.alice, properties={"kernel_id": kernel["id"],
                                                         "ramdisk_id": ramdisk["id"]})
    assert root["properties"]["kernel_id"] == kernel["id"]
    r = await api.post("/v1/images", headers=world.alice.h, json={
        "name": "x", "disk_format": "aki", "container_format": "bare"})
    assert r.status_code == 400 and "both must be the same" in r.text


async def test_linked_kernel_must_be_visible_and_a_kernel(api: httpx.AsyncClient, world: World,
                                                         good_qcow2: bytes) -> None:
    bobs = await active_image(api, world.bob, b"\x7fELF" + b"\0" * 8192, disk_format="aki")
    disk = await active_image(api, world.alice, good_qcow2)
    for ref in (bobs["id"], disk["id"], "nope"):
        r = await api.post("/v1/images", headers=world.alice.h, json={
            "name": "x", "disk_format": "qcow2", "container_format": "bare",
            "properties": {"kernel_id": ref}})
        assert r.status_code == 400 and r.json()["error"]["type"] == "ImageNotFound", r.text


# --- hostile files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(files: Path) -> list[Hostile]:
    return build(files / "hostile")


async def test_every_hostile_file_ends_in_error_with_nothing_stored(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings,
        corpus: list[Hostile]) -> None:
    for h in corpus:
        image = await new_image(api, world.alice, name=h.name, disk_format=h.declared)
        r = await upload(api, world.alice.h, image["id"], h.path.read_bytes())
        assert r.status_code == 400, (h.name, r.text)
        assert r.json()["error"]["type"] == "ImageRejected"
        assert h.reason in r.json()["error"]["message"], (h.name, r.text)
        shown = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
        assert shown["status"] == "error" and h.reason in shown["fault"], (h.name, shown)
        assert shown["size"] is None and shown["checksum"] is None
        assert stored(vmflow_home, image["id"]) == [], h.name
        r = await api.get(f"/v1/images/{image['id']}/file", headers=world.alice.h)
        assert r.status_code == 409
        r = await upload(api, world.alice.h, image["id"], b"\0" * 4096)
        assert r.status_code == 409  # an image in error stays so


def _all_stored_bytes(s: Settings) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in s.home.rglob("*")
            if p.is_file() and "vmflow.db" not in p.name]


async def test_no_host_file_is_ever_read_into_an_image(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, files: Path) -> None:
    secret = files / "host-secret"
    marker = f"host-secret-{uuid.uuid4()}".encode()
    secret.write_bytes(marker * 64)
    hostname = Path("/etc/hostname").read_bytes().strip()
    for name, backing in (("hostname", "/etc/hostname"), ("secret", str(secret))):
        hostile = files / f"backed-by-{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "raw",
                        str(hostile)], check=True)
        for declared in ("qcow2", "raw"):
            image = await new_image(api, world.alice, name=f"backed-{name}",
                                    disk_format=declared)
            r = await upload(api, world.alice.h, image["id"], hostile.read_bytes())
            assert r.status_code == 400 and "backing file" in r.json()["error"]["message"]
            assert stored(vmflow_home, image["id"]) == []
    for path, data in _all_stored_bytes(vmflow_home):
        assert marker not in data, path
        if path.startswith(str(vmflow_home.image_store)):
            assert hostname not in data, path


async def test_an_upload_over_the_limit_is_413_and_the_image_stays_queued(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings,
        monkeypatch: pytest.MonkeyPatch, good_qcow2: bytes) -> None:
    image = await new_image(api, world.alice)
    monkeypatch.setattr(get_settings(), "max_upload_gb", 0)
    r = await upload(api, world.alice.h, image["id"], b"\0" * 4096)  # Content-Length
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(4):
            yield b"\0" * 4096

    r = await api.put(f"/v1/images/{image['id']}/file", headers=world.alice.h,
                      content=chunked())
    assert r.status_code == 413
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()[
        "status"] == "queued"
    assert stored(vmflow_home, image["id"]) == []
    monkeypatch.undo()
    assert (await upload(api, world.alice.h, image["id"], good_qcow2)).status_code == 204


async def test_an_absurd_virtual_size_is_refused(api: httpx.AsyncClient, world: World,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 good_qcow2: bytes) -> None:
    monkeypatch.setattr(get_settings(), "max_image_virtual_gb", 0)  # 64M is too much
    image = await new_image(api, world.alice)
    r = await upload(api, world.alice.h, image["id"], good_qcow2)
    assert r.status_code == 400 and "absurd virtual size" in r.json()["error"]["message"]


# --- who may do what ------------------------------------------------------------------

async def test_roles_and_projects(api: httpx.AsyncClient, world: World,
                                  good_qcow2: bytes) -> None:
    image = await new_image(api, world.alice)
    for who in (world.rita, world.bob):  # a reader of p1, a member of p2
        r = await upload(api, who.h, image["id"], good_qcow2)
        assert r.status_code == (403 if who is world.rita else 404), r.text
        r = await api.delete(f"/v1/images/{image['id']}", headers=who.h)
        assert r.status_code == (403 if who is world.rita else 404)
    r = await api.post("/v1/images", headers=world.rita.h, json={
        "name": "x", "disk_format": "raw", "container_format": "bare"})
    assert r.status_code == 403
    assert (await upload(api, world.carol.h, image["id"], good_qcow2)).status_code == 204
    r = await api.post("/v1/images", headers=world.alice.h, json={
        "name": "x", "disk_format": "raw", "container_format": "bare", "visibility": "public"})
    assert r.status_code == 403 and "admin" in r.text
    public = await new_image(api, world.admin, visibility="public")
    assert public["visibility"] == "public"
    r = await api.post("/v1/images", headers=world.alice.h, json={
        "name": "x", "disk_format": "vmdk", "container_format": "bare"})
    assert r.status_code == 400


async def test_private_images_are_invisible_to_other_projects(
        api: httpx.AsyncClient, world: World, good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2, name="alices-private")
    for path in (f"/v1/images/{image['id']}", f"/v1/images/{image['id']}/file",
                 f"/v1/images/{image['id']}/members"):
        assert (await api.get(path, headers=world.bob.h)).status_code == 404, path
    listed = (await api.get("/v1/images", headers=world.bob.h)).json()["images"]
    assert image["id"] not in {i["id"] for i in listed}
    r = await api.post("/v1/servers", headers=world.bob.h,
                       json={"name": "vm", "image": image["id"], "flavor": "m1.tiny"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "ImageNotFound"
    r = await api.post(f"/v1/images/{image['id']}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 403 and "only shared images have members" in r.text


async def test_a_share_is_usable_only_once_accepted(api: httpx.AsyncClient, world: World,
                                                   good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2, name="shared-with-bob",
                               visibility="shared")
    iid = image["id"]

    async def bob_lists(status: str | None = None) -> bool:
        query = f"?member_status={status}" if status else ""
        r = await api.get(f"/v1/images{query}", headers=world.bob.h)
        return iid in {i["id"] for i in r.json()["images"]}

    async def bob_launches() -> int:
        r = await api.post("/v1/servers", headers=world.bob.h,
                           json={"name": "from-share", "image": iid, "flavor": "m1.tiny"})
        return r.status_code

    assert (await api.get(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 404
    r = await api.post(f"/v1/images/{iid}/members", headers=world.bob.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 404  # bob cannot add himself to what he cannot see
    r = await api.post(f"/v1/images/{iid}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 201, r.text
    assert (r.json()["member_id"], r.json()["status"]) == (world.bob.project_id, "pending")
    r = await api.post(f"/v1/images/{iid}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 409

    # pending: bob sees it by id and among pending shares, but cannot boot or fetch it
    assert (await api.get(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 200
    assert not await bob_lists() and await bob_lists("pending")
    before = counts()
    assert await bob_launches() == 400 and counts() == before
    assert (await api.get(f"/v1/images/{iid}/file", headers=world.bob.h)).status_code == 404

    # only bob answers for bob
    member_url = f"/v1/images/{iid}/members/{world.bob.project_id}"
    r = await api.put(member_url, headers=world.alice.h, json={"status": "accepted"})
    assert r.status_code == 403
    r = await api.put(member_url, headers=world.bob.h, json={"status": "rejected"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert not await bob_lists() and await bob_lists("rejected")
    assert await bob_launches() == 400
    r = await api.put(member_url, headers=world.bob.h, json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert await bob_lists() and not await bob_lists("pending")
    r = await api.get(f"/v1/images/{iid}/file", headers=world.bob.h)
    assert r.status_code == 200 and r.content == good_qcow2
    assert await bob_launches() == 202

    # members: the owner sees all, bob his own; bob may not remove or upload
    r = await api.get(f"/v1/images/{iid}/members", headers=world.carol.h)
    assert [m["member_id"] for m in r.json()["members"]] == [world.bob.project_id]
    r = await api.get(f"/v1/images/{iid}/members", headers=world.bob.h)
    assert [m["member_id"] for m in r.json()["members"]] == [world.bob.project_id]
    assert (await api.delete(member_url, headers=world.bob.h)).status_code == 403
    assert (await api.delete(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 403
    assert (await api.delete(member_url, headers=world.alice.h)).status_code == 204
    assert (await api.get(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 404
    assert await bob_launches() == 400


async def test_community_images_are_everyones(api: httpx.AsyncClient, world: World,
                                              good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2, visibility="community")
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.bob.h)).status_code == 200
    await create_server(api, world.bob, name="from-community", image=image["id"])


async def test_idempotent_create_and_member_add(api: httpx.AsyncClient, world: World) -> None:
    key = {"Idempotency-Key": f"img-{uuid.uuid4()}"}
    body = {"name": "idem", "disk_format": "raw", "container_format": "bare",
            "visibility": "shared"}
    first = await api.post("/v1/images", headers={**world.alice.h, **key}, json=body)
    again = await api.post("/v1/images", headers={**world.alice.h, **key}, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    iid = first.json()["id"]
    mkey = {"Idempotency-Key": f"member-{uuid.uuid4()}"}
    for _ in range(2):
        r = await api.post(f"/v1/images/{iid}/members", headers={**world.alice.h, **mkey},
                           json={"member": "p2"})  # a project's name works too
        assert r.status_code == 201 and r.json()["member_id"] == world.bob.project_id


# --- delete ----------------------------------------------------------------------------

async def test_delete_removes_the_data_and_protected_images_stay(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2)
    assert stored(vmflow_home, image["id"]) == [image["id"]]
    assert (await api.delete(f"/v1/images/{image['id']}", headers=world.carol.h)
            ).status_code == 204
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).status_code == 404
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.admin.h)).status_code == 404
    assert stored(vmflow_home, image["id"]) == []
    assert (await api.delete(f"/v1/images/{image['id']}", headers=world.alice.h)
            ).status_code == 404

    for protected in (True, "true"):
        kept = await active_image(api, world.alice, good_qcow2,
                                  properties={"protected": protected})
        r = await api.delete(f"/v1/images/{kept['id']}", headers=world.admin.h)
        assert r.status_code == 409 and r.json()["error"]["type"] == "ImageProtected"
        assert stored(vmflow_home, kept["id"]) == [kept["id"]]


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
