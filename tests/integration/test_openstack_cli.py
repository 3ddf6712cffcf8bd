"""The unmodified `openstack` client (python-openstackclient, pinned in the dev
dependencies) against a real stack: the clouds.yaml `make up` writes, Keystone tokens
and catalog, then the commands an operations guide has users type, each checked
through vmflow's own /v1 view of the same resource (a real guest, image, share)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
ALT_PASSWORD = "osc-alt-password"
CMD_TIMEOUT = 600  # the longest `--wait` (a snapshot of a TCG guest)


class Osc:
    """Runs `openstack` as a user would, with OS_CLOUD naming a cloud of `config`."""

    def __init__(self, config: Path, cloud: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env.update(OS_CLIENT_CONFIG_FILE=str(config), OS_CLOUD=cloud)
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            self.env.pop(k, None)  # loopback only

    def run(self, *args: str) -> str:
        done = subprocess.run([OPENSTACK, *args], env=self.env, capture_output=True,
                              text=True, timeout=CMD_TIMEOUT)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-f", "json"))

    def fails(self, *args: str) -> str:
        done = subprocess.run([OPENSTACK, *args], env=self.env, capture_output=True,
                              text=True, timeout=CMD_TIMEOUT)
        assert done.returncode != 0, f"openstack {' '.join(args)} succeeded: {done.stdout}"
        return done.stderr


@pytest.fixture(scope="module")
def clouds(it_settings: Settings, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
           ) -> Path:
    """`make up`'s clouds.yaml, plus a second project's user (password auth) for the
    image-sharing commands."""
    written = it_settings.home / "clouds.yaml"
    assert written.exists(), "the stack wrote no clouds.yaml"
    project = api.post("/v1/projects", json={"name": f"{PREFIX}alt"})
    assert project.status_code in (201, 409), project.text
    user = api.post("/v1/users", json={"name": f"{PREFIX}alt", "password": ALT_PASSWORD,
                                       "project": f"{PREFIX}alt", "role": "member"})
    assert user.status_code in (201, 409), user.text
    auth_url = it_settings.base_url.rstrip("/") + "/identity/v3"
    alt = "\n".join([
        f"  {PREFIX}alt:", "    auth:", f"      auth_url: {json.dumps(auth_url)}",
        f"      username: {json.dumps(PREFIX + 'alt')}", f"      password: {ALT_PASSWORD}",
        f"      project_name: {json.dumps(PREFIX + 'alt')}",
        "      user_domain_name: Default", "      project_domain_name: Default",
        "    region_name: RegionOne", "    identity_api_version: 3", ""])
    path = tmp_path_factory.mktemp("osc") / "clouds.yaml"
    path.write_text(written.read_text().rstrip("\n") + "\n" + alt)
    return path


@pytest.fixture(scope="module")
def osc(clouds: Path) -> Osc:
    return Osc(clouds, "vmflow")


@pytest.fixture(scope="module")
def alt(clouds: Path) -> Osc:
    return Osc(clouds, f"{PREFIX}alt")


def status_of(api: httpx.Client, server_id: str) -> str:
    return str(api.get(f"/v1/servers/{server_id}").json()["status"])


def wait_status(api: httpx.Client, server_id: str, want: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (now := status_of(api, server_id)) != want:
        assert time.monotonic() < deadline, f"{server_id}: {now}, not {want}"
        time.sleep(1)
    r = api.get(f"/v1/servers/{server_id}")
    assert not r.json().get("task_state"), r.json()


@pytest.fixture(scope="module")
def server(osc: Osc, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    user_data = tmp_path_factory.mktemp("ud") / "user-data"
    user_data.write_text("#!/bin/sh\necho osc\n")
    osc.run("keypair", "create", f"{PREFIX}key", "--private-key",
            str(user_data.with_name("key")))
    assert f"{PREFIX}key" in {k["Name"] for k in osc.json("keypair", "list")}
    made = osc.json("server", "create", "--image", "tiny", "--flavor", "t1.micro",
                    "--key-name", f"{PREFIX}key", "--user-data", str(user_data),
                    "--property", "a=b", "--wait", f"{PREFIX}osc-vm")
    assert made["status"] == "ACTIVE", made
    sid = str(made["id"])
    v1 = api.get(f"/v1/servers/{sid}").json()
    assert v1["status"] == "ACTIVE" and v1["metadata"] == {"a": "b"}, v1
    assert v1["key_name"] == f"{PREFIX}key"
    yield sid
    if api.get(f"/v1/servers/{sid}").status_code == 200:
        osc.run("server", "delete", "--wait", sid)


def test_catalog_and_reads(osc: Osc) -> None:
    services = {s["Type"] for s in osc.json("catalog", "list")}
    assert {"identity", "compute", "image", "shared-file-system"} <= services, services
    assert "t1.micro" in {f["Name"] for f in osc.json("flavor", "list")}
    assert osc.json("flavor", "show", "t1.micro")["vcpus"] >= 1
    flavor = osc.json("flavor", "create", "--vcpus", "1", "--ram", "128", "--disk", "1",
                      "--property", "k=v", f"{PREFIX}flavor")
    assert flavor["properties"] == {"k": "v"}, flavor
    assert osc.json("hypervisor", "list"), "no hypervisor listed"


def test_server_lifecycle(osc: Osc, api: httpx.Client, server: str) -> None:
    listed = {s["ID"]: s for s in osc.json("server", "list")}
    assert listed[server]["Status"] == "ACTIVE"
    assert osc.json("server", "show", server)["name"] == f"{PREFIX}osc-vm"
    for command, extra, want in (
            ("stop", (), "SHUTOFF"), ("start", (), "ACTIVE"),
            ("reboot", ("--wait",), "ACTIVE"), ("reboot", ("--hard", "--wait"), "ACTIVE"),
            ("pause", (), "PAUSED"), ("unpause", (), "ACTIVE"),
            ("suspend", (), "SUSPENDED"), ("resume", (), "ACTIVE"),
            ("rescue", (), "RESCUE"), ("unrescue", (), "ACTIVE"),
            ("lock", (), "ACTIVE"), ("unlock", (), "ACTIVE"),
            ("shelve", (), "SHELVED_OFFLOADED"), ("unshelve", (), "ACTIVE")):
        osc.run("server", command, *extra, server)
        wait_status(api, server, want)
        if command == "lock":
            assert api.get(f"/v1/servers/{server}").json()["locked"] is True
    before = api.get(f"/v1/servers/{server}/actions").json()["actions"]
    osc.run("server", "rebuild", "--image", "tiny", server)  # --wait prints more than JSON
    wait_status(api, server, "ACTIVE")
    after = api.get(f"/v1/servers/{server}/actions").json()["actions"]
    assert [a["action"] for a in after[len(before):]] == ["rebuild"], after
    events = {e["Action"] for e in osc.json("server", "event", "list", server)}
    assert {"create", "stop", "start", "shelve", "unshelve", "rebuild"} <= events, events


def test_server_image(osc: Osc, api: httpx.Client, server: str) -> None:
    image = osc.json("server", "image", "create", "--name", f"{PREFIX}snap", "--wait", server)
    assert image["status"] == "active", image
    v1 = api.get(f"/v1/images/{image['id']}").json()
    assert v1["status"] == "active" and v1["properties"]["instance_uuid"] == server
    osc.run("image", "delete", image["id"])
    assert api.get(f"/v1/images/{image['id']}").json().get("status") in (None, "deleted")


def test_images(osc: Osc, alt: Osc, api: httpx.Client, tmp_path: Path) -> None:
    data = tmp_path / "disk.raw"
    data.write_bytes(b"\0" * (1 << 20))
    made = osc.json("image", "create", "--file", str(data), "--disk-format", "raw",
                    "--container-format", "bare", "--shared", f"{PREFIX}img")
    iid = made["id"]
    assert osc.json("image", "show", iid)["status"] == "active"
    assert iid in {i["ID"] for i in osc.json("image", "list")}
    osc.run("image", "set", "--property", "foo=bar", iid)
    assert api.get(f"/v1/images/{iid}").json()["properties"]["foo"] == "bar"
    osc.run("image", "add", "project", iid, f"{PREFIX}alt")
    alt.run("image", "set", "--accept", iid)
    assert iid in {i["ID"] for i in alt.json("image", "list")}
    osc.run("image", "delete", iid)
    assert iid not in {i["ID"] for i in osc.json("image", "list")}


def test_shares(osc: Osc, api: httpx.Client) -> None:
    share = osc.json("share", "create", "NFS", "1", "--name", f"{PREFIX}share", "--wait")
    sid = share["id"]
    assert api.get(f"/v1/shares/{sid}").json()["status"] == "available"
    assert sid in {s["ID"] for s in osc.json("share", "list")}
    assert osc.json("share", "show", sid)["export_locations"]
    rule = osc.json("share", "access", "create", sid, "ip", "10.0.0.0/24", "--wait")
    assert rule["access_to"] == "10.0.0.0/24"
    assert {r["Access To"] for r in osc.json("share", "access", "list", sid)} == {"10.0.0.0/24"}
    snap = osc.json("share", "snapshot", "create", "--name", f"{PREFIX}snap", sid, "--wait")
    osc.run("share", "snapshot", "delete", "--wait", snap["id"])
    osc.run("share", "resize", sid, "2", "--wait")
    assert api.get(f"/v1/shares/{sid}").json()["size"] == 2
    osc.run("share", "delete", "--wait", sid)
    assert api.get(f"/v1/shares/{sid}").status_code == 404


def test_networks(osc: Osc, api: httpx.Client) -> None:
    net = osc.json("network", "create", f"{PREFIX}net")
    sub = osc.json("subnet", "create", "--network", net["id"], "--subnet-range",
                   "10.77.0.0/24", f"{PREFIX}sub")
    assert sub["cidr"] == "10.77.0.0/24"
    port = osc.json("port", "create", "--network", net["id"], f"{PREFIX}port")
    assert [ip["subnet_id"] for ip in port["fixed_ips"]] == [sub["id"]], port
    group = osc.json("security", "group", "create", f"{PREFIX}sg")
    rule = osc.json("security", "group", "rule", "create", "--protocol", "tcp",
                    "--dst-port", "22", group["id"])
    assert (rule["port_range_min"], rule["port_range_max"]) == (22, 22)
    ext = osc.json("network", "create", "--external", f"{PREFIX}ext")
    osc.json("subnet", "create", "--network", ext["id"], "--subnet-range", "192.0.2.16/28",
             f"{PREFIX}ext-sub")
    fip = osc.json("floating", "ip", "create", ext["id"])
    assert fip["floating_ip_address"].startswith("192.0.2.")
    assert net["id"] in {n["ID"] for n in osc.json("network", "list")}
    assert sub["id"] in {s["ID"] for s in osc.json("subnet", "list")}
    assert port["id"] in {p["ID"] for p in osc.json("port", "list")}
    assert group["id"] in {g["ID"] for g in osc.json("security", "group", "list")}
    assert fip["id"] in {f["ID"] for f in osc.json("floating", "ip", "list")}
    # the same objects through vmflow's own API
    assert api.get(f"/v1/ports/{port['id']}").status_code == 200
    assert api.get(f"/v1/floating-ips/{fip['id']}").status_code == 200
    osc.run("floating", "ip", "delete", fip["id"])
    osc.run("port", "delete", port["id"])
    osc.run("security", "group", "delete", group["id"])
    assert api.get(f"/v1/ports/{port['id']}").status_code == 404
