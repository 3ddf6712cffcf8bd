"""The image service through the API: create, streamed upload with inspection,
download; hostile files end in error with their reason and leave nothing in the
store; no host file ever becomes image data. Visibility, members and delete are in
test_image_sharing.py, the hosts' service token and staged import in
test_image_hosts.py (both use the helpers here)."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Caller, World, bearer
from tests.hostile_images import Hostile, build
from vmflow.settings import Settings, get_settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


def qcow2(files: Path) -> bytes:
    """A valid empty 64M qcow2 image."""
    path = files / "good.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path.read_bytes()


def service_headers(s: Settings) -> dict[str, str]:
    """The hosts' service token."""
    return bearer(s.service_token_file.read_text().strip())


@pytest.fixture(scope="module")
def good_qcow2(files: Path) -> bytes:
    return qcow2(files)


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
