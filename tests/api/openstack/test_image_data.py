"""Glance facade uploads and downloads: the same streamed upload and hostile-image
inspection as /v1 (a hostile file is refused the same way, nothing kept), 409 for a
second upload, 204 for an image without data."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import World
from tests.api.openstack.image_support import GOOD_RAW, V2, create, h, upload, valid_image
from tests.hostile_images import Hostile, build
from vmflow.settings import Settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("glance-images")


@pytest.fixture(scope="module")
def hostile(files: Path) -> list[Hostile]:
    return build(files / "hostile")


async def test_qcow2_round_trip(api: httpx.AsyncClient, world: World, files: Path,
                                vmflow_home: Settings) -> None:
    path = files / "good.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    data = path.read_bytes()
    image = await create(api, world.alice, name="q", disk_format="qcow2")
    url = f"{V2}/images/{image['id']}"
    r = await api.get(f"{url}/file", headers=h(world.alice))
    assert r.status_code == 204 and r.content == b""  # no data yet
    assert (await upload(api, world.alice, image["id"], data)).status_code == 204
    got = await valid_image(api, world.alice, (await api.get(url, headers=h(world.alice))).json())
    assert (got["status"], got["size"], got["os_hash_algo"], got["os_hash_value"]) == (
        "active", len(data), "sha256", hashlib.sha256(data).hexdigest())
    r = await api.get(f"{url}/file", headers=h(world.alice))
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/octet-stream"
    assert sorted(p.name for p in vmflow_home.image_store.glob(f"{image['id']}*")) == [
        image["id"]]
    # the data is uploaded once
    assert (await upload(api, world.alice, image["id"], data)).status_code == 409


async def test_hostile_images_are_refused_as_on_v1(api: httpx.AsyncClient, world: World,
                                                   hostile: list[Hostile],
                                                   vmflow_home: Settings) -> None:
    for case in hostile[:6]:
        image = await create(api, world.alice, name="hostile", disk_format=case.declared)
        r = await upload(api, world.alice, image["id"], case.path.read_bytes())
        assert r.status_code == 400, (case.name, r.text)
        assert case.reason in r.json()["error"]["message"], (case.name, r.text)
        got = (await api.get(f"{V2}/images/{image['id']}", headers=h(world.alice))).json()
        assert got["status"] == "killed", case.name
        assert list(vmflow_home.image_store.glob(f"{image['id']}*")) == [], case.name
        # and /v1 shows the same image in error, with the reason
        v1 = (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).json()
        assert v1["status"] == "error" and case.reason in v1["fault"]


async def test_upload_needs_formats_owner_and_writer(api: httpx.AsyncClient,
                                                     world: World) -> None:
    r = await api.post(f"{V2}/images", headers=h(world.alice), json={"name": "bare"})
    assert r.status_code == 201
    image = await valid_image(api, world.alice, r.json())
    assert image["disk_format"] is None
    assert (await upload(api, world.alice, image["id"], GOOD_RAW)).status_code == 400
    assert (await api.get(f"{V2}/images/{image['id']}", headers=h(world.alice))
            ).json()["status"] == "queued"
    image = await create(api, world.alice)
    assert (await upload(api, world.bob, image["id"], GOOD_RAW)).status_code == 404
    assert (await upload(api, world.rita, image["id"], GOOD_RAW)).status_code == 403
    r = await api.put(f"{V2}/images/{world.image.id}/file", headers=h(world.alice),
                      content=GOOD_RAW)
    assert r.status_code == 403  # public, not alice's
    assert (await upload(api, world.alice, image["id"], GOOD_RAW)).status_code == 204
