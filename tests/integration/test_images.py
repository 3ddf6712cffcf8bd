"""An uploaded image boots a real guest: a copy of the tiny root disk goes through
the API (upload, inspection), the host downloads it over HTTP with the service token
and the guest's agent answers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import libvirt
import libvirt_qemu
import pytest

from tests.integration.conftest import CLEAN, create_server, delete_server, remains, wait_operation
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

BOOT_PROPERTIES = ("kernel_id", "ramdisk_id", "os_command_line", "hw_qemu_guest_agent")


def test_an_uploaded_image_boots_a_guest_whose_agent_answers(
    it_settings: Settings, api: httpx.Client, tiny_guest: Path
) -> None:
    [tiny] = [i for i in api.get("/v1/images").json()["images"] if i["name"] == "tiny"]
    r = api.post("/v1/images", json={
        "name": "uploaded-tiny", "disk_format": "qcow2", "container_format": "bare",
        "properties": {k: tiny["properties"][k] for k in BOOT_PROPERTIES}})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    data = (tiny_guest / "root.qcow2").read_bytes()
    r = api.put(f"/v1/images/{image_id}/file", content=data,
                headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    image = api.get(f"/v1/images/{image_id}").json()
    assert (image["status"], image["size"], image["checksum"]) == (
        "active", len(data), hashlib.sha256(data).hexdigest())

    server_id, op_id = create_server(api, "from-upload", image=image_id)
    op = wait_operation(api, op_id)
    assert op["status"] == "succeeded", op.get("last_error")
    server = api.get(f"/v1/servers/{server_id}").json()
    assert (server["status"], server["image_id"]) == ("ACTIVE", image_id)
    cached = it_settings.host_dir() / "cache" / image_id
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == image["checksum"]
    dom = libvirt.open(it_settings.libvirt_uri).lookupByUUIDString(server_id)
    pong = json.loads(libvirt_qemu.qemuAgentCommand(dom, '{"execute": "guest-ping"}', 10, 0))
    assert pong == {"return": {}}

    assert delete_server(api, server_id)["status"] == "succeeded"
    assert remains(it_settings, server_id) == CLEAN
    assert api.delete(f"/v1/images/{image_id}").status_code == 204
    assert not (it_settings.image_store / image_id).exists()
