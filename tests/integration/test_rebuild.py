"""rebuild on a real QEMU guest through the API: the new image boots on a fresh disk
under the same id, and a new image that never boots gives the guest its old disk
back; nothing is left behind either way."""

from __future__ import annotations

import time
from typing import Any

import httpx
import libvirt
import pytest

from tests.conftest import db_session
from tests.integration.conftest import CLEAN, act, action, delete_server, remains
from tests.integration.guest import agent, boot_id, power, sh
from tests.integration.test_actions import launched, server
from vmflow.models import Image
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

REBUILD_FILES = ("disk.new", "disk.old", "domain.json.old")
MARKER = "/rebuild-marker"


def register_copy(s: Settings, api: httpx.Client, name: str, **props: str) -> str:
    """The tiny image under another id, with some properties changed."""
    images = api.get("/v1/images").json()["images"]
    tiny_id = next(i["id"] for i in images if i["name"] == "tiny")
    with db_session(s) as session:
        tiny = session.get(Image, tiny_id)
        assert tiny is not None
        copy = Image(name=name, status="active", disk_format="qcow2", visibility="public",
                     size=tiny.size, checksum=tiny.checksum, location=tiny.location,
                     properties={**tiny.properties, **props})
        session.add(copy)
        session.commit()
        return copy.id


def image_id(api: httpx.Client, name: str) -> str:
    return str(next(i["id"] for i in api.get("/v1/images").json()["images"]
                    if i["name"] == name))


def write_marker(sid: str) -> None:
    code, _ = sh(sid, f"echo kept > {MARKER} && sync")
    assert code == 0


def wait_for_agent(sid: str, timeout: float = 60) -> None:
    """The undo powers the old disk on without waiting for its guest to boot."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            agent(sid, "guest-ping")
            return
        except libvirt.libvirtError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def has_marker(sid: str) -> bool:
    return sh(sid, f"cat {MARKER} 2>/dev/null")[1].strip() == "kept"


def leftovers(s: Settings, sid: str) -> list[str]:
    d = s.host_dir() / "instances" / sid
    return [f for f in REBUILD_FILES if (d / f).exists()]


def rebuild(api: httpx.Client, sid: str, ref: str) -> dict[str, Any]:
    r = action(api, sid, {"rebuild": {"imageRef": ref}})
    assert r.status_code == 202, r.text
    seen = set()
    while True:  # the status says REBUILD while it runs
        seen.add(server(api, sid)["status"])
        op: dict[str, Any] = api.get(f"/v1/operations/{r.json()['operation']['id']}").json()
        if op["status"] != "running":
            break
        time.sleep(0.2)
    assert "REBUILD" in seen, seen
    return op


def test_rebuild_boots_the_new_image_and_keeps_the_id(
    api: httpx.Client, it_settings: Settings
) -> None:
    register_copy(it_settings, api, "tiny-copy")
    sid = launched(api, "rebuild", image="tiny-copy")  # launched() passes image= through
    before = server(api, sid)
    write_marker(sid)
    boot = boot_id(sid)

    op = rebuild(api, sid, "tiny")
    assert op["status"] == "succeeded", op.get("last_error")
    after = server(api, sid)
    assert {k: after[k] for k in ("id", "name", "flavor_id", "addresses", "host")} == {
        k: before[k] for k in ("id", "name", "flavor_id", "addresses", "host")}
    assert (after["status"], after["image_id"]) == ("ACTIVE", image_id(api, "tiny"))
    assert power(sid) == "running"
    assert boot_id(sid) != boot  # the agent answers, from a new boot
    assert not has_marker(sid)  # a fresh disk
    assert leftovers(it_settings, sid) == []

    # a new image whose guest never comes up: the old disk comes back, marker and all
    write_marker(sid)
    broken = register_copy(it_settings, api, "tiny-never-boots",
                           os_command_line="console=ttyS0 quiet rdinit=/bin/sh")
    op = rebuild(api, sid, broken)
    assert op["status"] == "compensated", op
    assert "guest agent did not answer" in op["last_error"]
    after = server(api, sid)
    assert (after["status"], after["image_id"]) == ("ACTIVE", image_id(api, "tiny"))
    assert power(sid) == "running"
    wait_for_agent(sid)
    assert has_marker(sid)  # the old disk, booted again
    assert leftovers(it_settings, sid) == []

    # from SHUTOFF: the new disk boots once to prove itself, then it is off again
    assert act(api, sid, {"os-stop": None})["status"] == "succeeded"
    op = rebuild(api, sid, "tiny-copy")
    assert op["status"] == "succeeded", op.get("last_error")
    after = server(api, sid)
    assert (after["status"], after["image_id"]) == ("SHUTOFF", image_id(api, "tiny-copy"))
    assert power(sid) == "shutoff"
    assert act(api, sid, {"os-start": None})["status"] == "succeeded"
    assert not has_marker(sid)

    assert delete_server(api, sid)["status"] == "succeeded"
    assert remains(it_settings, sid) == CLEAN


def test_rebuild_refusals_change_nothing(api: httpx.Client, it_settings: Settings) -> None:
    sid = launched(api, "rebuild-refused")
    before = server(api, sid)
    history = len(api.get(f"/v1/servers/{sid}/actions").json()["actions"])
    r = action(api, sid, {"rebuild": {"imageRef": "no-such-image"}})
    assert (r.status_code, r.json()["error"]["type"]) == (400, "ImageNotFound"), r.text
    assert act(api, sid, {"pause": None})["status"] == "succeeded"
    r = action(api, sid, {"rebuild": {"imageRef": "tiny"}})
    assert r.status_code == 409, r.text
    assert "Cannot 'rebuild'" in r.json()["error"]["message"]
    assert power(sid) == "paused"
    assert act(api, sid, {"unpause": None})["status"] == "succeeded"
    after = server(api, sid)
    assert (after["status"], after["image_id"]) == ("ACTIVE", before["image_id"])
    assert len(api.get(f"/v1/servers/{sid}/actions").json()["actions"]) == history + 2
    assert delete_server(api, sid)["status"] == "succeeded"
    assert remains(it_settings, sid) == CLEAN
