"""`vmflow image|flavor|operation ...` against the real API test app (the CLI in a
thread, bridged onto the app as in test_share_cli): a real qcow2 made by qemu-img
uploaded through `image create --file`, downloaded back, shared and accepted; flavor
access; the operation list."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import World, create_server
from tests.api.test_share_cli import vmflow


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-images") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "32M"], check=True)
    return path


async def test_image_create_uploads_downloads_and_deletes(
        api: httpx.AsyncClient, world: World, qcow2: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, bridge = await vmflow(api, world.alice, "image", "create", "cli-disk", "--file",
                                str(qcow2), "--disk-format", "qcow2", "--property",
                                "os_distro=tiny", "--json")
    assert code == 0, capsys.readouterr().err
    image = out_json(capsys)
    data = qcow2.read_bytes()
    assert (image["status"], image["size"], image["checksum"], image["owner"]) == (
        "active", len(data), hashlib.sha256(data).hexdigest(), world.alice.project_id)
    assert image["properties"] == {"os_distro": "tiny"}
    post, put = bridge.seen[0], bridge.seen[1]
    assert json.loads(post.content) == {
        "name": "cli-disk", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "private", "properties": {"os_distro": "tiny"}}
    assert (put.method, put.url.path) == ("PUT", f"/v1/images/{image['id']}/file")
    assert put.headers["content-length"] == str(len(data))

    out = tmp_path / "back.qcow2"
    code, _ = await vmflow(api, world.alice, "image", "download", "cli-disk", "--file", str(out))
    assert code == 0
    assert out.read_bytes() == data
    assert f"sha256 {image['checksum']} verified" in capsys.readouterr().err
    code, _ = await vmflow(api, world.alice, "image", "download", "cli-disk", "--file", str(out))
    assert code == 2  # never overwrites

    # another project does not see it; the owner deletes it
    code, _ = await vmflow(api, world.bob, "image", "show", image["id"])
    assert code == 1 and "not found" in capsys.readouterr().err
    code, _ = await vmflow(api, world.alice, "image", "delete", "cli-disk")
    assert code == 0
    code, _ = await vmflow(api, world.alice, "image", "show", image["id"])
    assert code == 1


async def test_image_create_rejected_data_exits_1(api: httpx.AsyncClient, world: World,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.qcow2"
    bogus.write_bytes(b"not a qcow2 at all" * 1000)
    code, _ = await vmflow(api, world.alice, "image", "create", "cli-bogus", "--file", str(bogus),
                           "--disk-format", "qcow2")
    assert code == 1 and "rejected" in capsys.readouterr().err
    code, _ = await vmflow(api, world.alice, "image", "list", "--json")
    assert [i["status"] for i in out_json(capsys) if i["name"] == "cli-bogus"] == ["error"]


async def test_image_create_queued_then_upload(api: httpx.AsyncClient, world: World,
                                               qcow2: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await vmflow(api, world.alice, "image", "create", "cli-later", "--disk-format",
                           "qcow2", "--json")
    assert code == 0
    image = out_json(capsys)
    assert image["status"] == "queued"
    code, _ = await vmflow(api, world.alice, "image", "upload", image["id"], "--file",
                           str(qcow2), "--json")
    assert code == 0 and out_json(capsys)["status"] == "active"
    code, _ = await vmflow(api, world.alice, "image", "upload", image["id"], "--file",
                           str(qcow2))
    assert code == 1 and "not queued" in capsys.readouterr().err


async def test_image_set_and_share_with_another_project(
        api: httpx.AsyncClient, world: World, qcow2: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await vmflow(api, world.alice, "image", "create", "cli-share", "--file",
                           str(qcow2), "--disk-format", "qcow2", "--json")
    iid = out_json(capsys)["id"]
    assert code == 0
    code, _ = await vmflow(api, world.alice, "image", "set", "cli-share", "--name", "cli-shared",
                           "--visibility", "shared", "--property", "a=1", "--json")
    assert code == 0
    changed = out_json(capsys)
    assert (changed["name"], changed["visibility"], changed["properties"]) == (
        "cli-shared", "shared", {"a": "1"})
    code, _ = await vmflow(api, world.alice, "image", "set", iid, "--unset-property", "a",
                           "--json")
    assert code == 0 and out_json(capsys)["properties"] == {}
    code, _ = await vmflow(api, world.alice, "image", "set", iid, "--visibility", "public")
    assert code == 1 and "only role admin" in capsys.readouterr().err
    code, _ = await vmflow(api, world.bob, "image", "set", iid, "--name", "mine")
    assert code == 1  # not bob's to see

    code, _ = await vmflow(api, world.alice, "image", "member-add", "cli-shared",
                           world.bob.project_id, "--json")
    assert code == 0 and out_json(capsys)["status"] == "pending"
    code, _ = await vmflow(api, world.bob, "image", "list", "--pending", "--json")
    assert iid in [i["id"] for i in out_json(capsys)]
    code, _ = await vmflow(api, world.bob, "image", "member-accept", iid, "--json")
    assert code == 0
    assert (out_json(capsys)["member_id"]) == world.bob.project_id
    code, _ = await vmflow(api, world.bob, "image", "list", "--json")
    assert iid in [i["id"] for i in out_json(capsys)]
    code, _ = await vmflow(api, world.alice, "image", "member-list", iid, "--json")
    assert [(m["member_id"], m["status"]) for m in out_json(capsys)] == [
        (world.bob.project_id, "accepted")]
    code, _ = await vmflow(api, world.bob, "image", "member-show", iid, world.bob.project_id,
                           "--json")
    assert code == 0 and out_json(capsys)["status"] == "accepted"
    code, _ = await vmflow(api, world.bob, "image", "member-reject", iid)
    assert code == 0
    code, _ = await vmflow(api, world.alice, "image", "member-remove", iid,
                           world.bob.project_id)
    assert code == 0
    code, _ = await vmflow(api, world.bob, "image", "show", iid)
    assert code == 1


async def test_flavor_create_access_and_delete(api: httpx.AsyncClient, world: World,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await vmflow(api, world.admin, "flavor", "create", "cli.private", "--vcpus", "1",
                           "--ram", "256", "--disk", "1", "--private", "--property",
                           "hw:cpu_policy=shared", "--json")
    assert code == 0
    flavor = out_json(capsys)
    assert (flavor["is_public"], flavor["extra_specs"]) == (False, {"hw:cpu_policy": "shared"})
    code, _ = await vmflow(api, world.alice, "flavor", "show", "cli.private")
    assert code == 1 and "not found" in capsys.readouterr().err
    code, _ = await vmflow(api, world.alice, "flavor", "access-add", "cli.private", "p1")
    assert code == 1 and "needs role admin" in capsys.readouterr().err

    code, _ = await vmflow(api, world.admin, "flavor", "access-add", "cli.private", "p1",
                           "--json")
    assert code == 0 and out_json(capsys)["flavor_access"] == [
        {"flavor_id": flavor["id"], "project_id": world.alice.project_id}]
    code, _ = await vmflow(api, world.admin, "flavor", "access-list", "cli.private")
    assert code == 0 and world.alice.project_id in capsys.readouterr().out
    code, _ = await vmflow(api, world.alice, "flavor", "list", "--json")
    assert "cli.private" in [f["name"] for f in out_json(capsys)]
    code, _ = await vmflow(api, world.admin, "flavor", "access-add", "cli.private", "p1")
    assert code == 1 and "already has access" in capsys.readouterr().err
    code, _ = await vmflow(api, world.admin, "flavor", "access-remove", "cli.private", "p1")
    assert code == 0
    code, _ = await vmflow(api, world.admin, "flavor", "access-list", "cli.private")
    assert code == 0 and "no project has access" in capsys.readouterr().out
    code, _ = await vmflow(api, world.admin, "flavor", "delete", "cli.private")
    assert code == 0
    code, _ = await vmflow(api, world.admin, "flavor", "show", flavor["id"])
    assert code == 1


async def test_operation_list_is_per_project(api: httpx.AsyncClient, world: World,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    mine = await create_server(api, world.alice, name="cli-ops")
    theirs = await create_server(api, world.bob, name="cli-ops-bob")
    code, _ = await vmflow(api, world.alice, "operation", "list", "--json")
    assert code == 0
    ids = [o["id"] for o in out_json(capsys)]
    assert mine["operation"]["id"] in ids and theirs["operation"]["id"] not in ids
    code, _ = await vmflow(api, world.admin, "operation", "list", "--resource",
                           theirs["server"]["id"], "--status", "running", "--json")
    ops = out_json(capsys)
    assert [(o["id"], o["action"]) for o in ops] == [(theirs["operation"]["id"], "create")]
    code, _ = await vmflow(api, world.alice, "operation", "list", "--limit", "1")
    assert code == 0 and mine["operation"]["id"] in capsys.readouterr().out
    code, _ = await vmflow(api, world.alice, "operation", "list", "--status", "nope")
    assert code == 2
