"""Hostile names and metadata end to end, on one real guest and one real share: the
strings the API keeps byte for byte (tests/api/test_hostile_names.py) never reach the
domain XML, a file path or the ganesha export files, and reach the config drive only
as JSON text (or, for user data, as the exact bytes sent).

Every hostile string carries MARK, so "nowhere" is checked by searching for it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from activities.control.metadata_docs import hostname
from tests.integration.conftest import PREFIX, delete_server, wait_operation
from tests.integration.guest import domain, sh
from tests.integration.test_shares import allow, create_share, share_action, wait_rules
from tests.nfs_clients import nfs_clients, nfs_read, nfs_url, nfs_write
from vmflow import storage_netns
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

MARK = "zq7hostile"
SHELL = "<>&'\"$();|../"
NAME = f"{MARK} {SHELL} `id` ]]><!-- 名前 ☃"
META = {f"{MARK}<k>&'\"$();|../": f"{MARK} line1\nline2\t<v>{SHELL}",
        f"{MARK}-名前 ☃": "]]><![CDATA[x]]>&amp;"}
KEY_NAME = "hostile key.1"  # keypair names have Nova's charset
KEY_COMMENT = f"{MARK}@<host>&'\"$();|../"
USER_DATA = f"{MARK} {SHELL}\n".encode() + b"\x00\xff\xfe`reboot`\r\n"
SHARE_NAME = f"{MARK}-share {SHELL} 名前"
FRAGMENTS = [MARK, "名前", "☃", "<>&", "$(", "]]>", "`id`", "CDATA"]
CLIENT = "10.254.0.4"
CONFIG_FILES = {"/openstack", "/openstack/latest", "/openstack/latest/meta_data.json",
                "/openstack/latest/network_data.json", "/openstack/latest/user_data"}


def assert_no_trace(text: str, where: str) -> None:
    found = [f for f in FRAGMENTS if f in text]
    assert not found, f"{where} holds {found}"


def generated_key(comment: str) -> str:
    """A fresh ed25519 public key line whose comment is `comment` (an argv element)."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-C", comment, "-f",
                        f"{d}/k"], check=True, capture_output=True, timeout=30)
        return Path(f"{d}/k.pub").read_text().strip()


def iso_files(iso: Path) -> set[str]:
    out = subprocess.run(["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True,
                         check=True, timeout=30).stdout.decode()
    return {line for line in out.splitlines() if line}


def iso_read(iso: Path, path: str) -> bytes:
    return subprocess.run(["isoinfo", "-R", "-x", path, "-i", str(iso)], capture_output=True,
                          check=True, timeout=30).stdout


@pytest.fixture(scope="module")
def hostile_server(api: httpx.Client) -> Iterator[dict[str, Any]]:
    """One guest launched with the hostile name, metadata, key comment and user data."""
    public_key = generated_key(KEY_COMMENT)
    r = api.post("/v1/keypairs", json={"name": KEY_NAME, "public_key": public_key})
    assert r.status_code == 201, r.text
    assert r.json()["keypair"]["public_key"] == public_key
    r = api.post("/v1/servers", json={
        "name": NAME, "image": "tiny", "flavor": "t1.micro", "key_name": KEY_NAME,
        "metadata": META, "user_data": base64.b64encode(USER_DATA).decode()})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    op = wait_operation(api, r.json()["operation"]["id"], timeout=300)
    assert op["status"] == "succeeded", op.get("last_error")
    yield {"id": sid, "public_key": public_key}
    assert delete_server(api, sid)["status"] == "succeeded"
    assert api.delete(f"/v1/keypairs/{KEY_NAME}").status_code == 204


def test_the_api_shows_the_guest_byte_for_byte(api: httpx.Client,
                                               hostile_server: dict[str, Any]) -> None:
    shown = api.get(f"/v1/servers/{hostile_server['id']}").json()
    assert (shown["name"], shown["metadata"], shown["key_name"]) == (NAME, META, KEY_NAME)
    assert api.get(f"/v1/servers/{hostile_server['id']}/metadata").json() == {
        "metadata": META}


def test_domain_xml_holds_no_user_text(it_settings: Settings,
                                       hostile_server: dict[str, Any]) -> None:
    sid = hostile_server["id"]
    dom = domain(sid)
    assert dom.name() == f"{PREFIX}{sid}"
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
        xml = dom.XMLDesc(flags)
        assert_no_trace(xml, "the domain XML")
        root = ET.fromstring(xml)  # it parses: nothing broke out of its text
        assert root.find("title") is None and root.find("description") is None
        for el in root.iter():
            for value in [el.text or "", *el.attrib.values()]:
                assert_no_trace(value, f"<{el.tag}>")
        files = [s.get("file") for s in root.iterfind("./devices/disk/source")]
        instance_files = [f for f in files if f and f.startswith(str(it_settings.host_dir()
                                                                  / "instances"))]
        # the root disk and the config drive: under the instance's id, named by vmflow
        assert {Path(f).relative_to(it_settings.host_dir() / "instances" / sid).as_posix()
                for f in instance_files} == {"disk", "config.iso"}


def test_config_drive_holds_the_strings_as_json(it_settings: Settings,
                                                hostile_server: dict[str, Any]) -> None:
    sid = hostile_server["id"]
    iso = it_settings.host_dir() / "instances" / sid / "config.iso"
    assert iso_files(iso) == CONFIG_FILES  # no file named after anything the user gave
    raw = iso_read(iso, "/openstack/latest/meta_data.json")
    assert raw.isascii()  # every non-ASCII character and control is a JSON escape
    meta = json.loads(raw)
    pub = hostile_server["public_key"]
    assert (meta["uuid"], meta["name"], meta["meta"]) == (sid, NAME, META)
    assert meta["public_keys"] == {KEY_NAME: pub}
    assert meta["keys"] == [{"name": KEY_NAME, "type": "ssh", "data": pub}]
    assert pub.endswith(" " + KEY_COMMENT)
    # the hostname is a DNS label made from the name, never the name
    assert meta["hostname"] == hostname(NAME, sid) == f"{MARK}-id"
    assert iso_read(iso, "/openstack/latest/user_data") == USER_DATA
    assert_no_trace(iso_read(iso, "/openstack/latest/network_data.json").decode(),
                    "network_data.json")
    # the guest reads the same documents from its config drive
    rc, out = sh(sid, "cat /mnt/config/openstack/latest/meta_data.json")
    assert rc == 0 and json.loads(out) == meta
    rc, out = sh(sid, "md5sum /mnt/config/openstack/latest/user_data")
    assert (rc, out.split()[0]) == (0, hashlib.md5(USER_DATA).hexdigest())


def test_a_share_with_a_hostile_name_is_exported_and_served(
        api: httpx.Client, it_settings: Settings, hostile_server: dict[str, Any]) -> None:
    share_id, op_id = create_share(api, SHARE_NAME, 1)
    assert wait_operation(api, op_id)["status"] == "succeeded"
    share = api.get(f"/v1/shares/{share_id}").json()
    assert (share["name"], share["status"]) == (SHARE_NAME, "available")
    allow(api, share_id, CLIENT, "rw")
    assert {r["state"] for r in wait_rules(api, share_id)} == {"active"}
    r = api.post("/v1/share-snapshots", json={"share_id": share_id, "name": NAME})
    assert r.status_code == 202, r.text
    snap_id = r.json()["snapshot"]["id"]
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
    assert api.get(f"/v1/share-snapshots/{snap_id}").json()["name"] == NAME

    ganesha = it_settings.storage_dir / "ganesha"
    export = (ganesha / "exports" / f"{share_id}.conf").read_text()
    assert_no_trace(export, "the export file")
    assert_no_trace((ganesha / "ganesha.conf").read_text(), "ganesha.conf")
    assert f'Path = "{it_settings.storage_dir}/exports/{share_id}";' in export
    # an option smuggled in an access rule is refused and the file stays as it was
    bad = share_action(api, share_id, {"allow_access": {
        "access_type": "ip", "access_to": f"{CLIENT}(rw,no_root_squash)",
        "access_level": "rw"}})
    assert bad.status_code == 400, bad.text
    assert (ganesha / "exports" / f"{share_id}.conf").read_text() == export

    # ganesha still serves it
    path = share["export_locations"][0].split(":", 1)[1]
    with nfs_clients([CLIENT], storage_netns.name(it_settings)) as ns:
        nfs_write(ns[CLIENT], nfs_url(path, "hello.txt"), SHELL.encode())
        assert nfs_read(ns[CLIENT], nfs_url(path, "hello.txt")) == SHELL.encode()

    assert_no_file_path_holds_user_text(it_settings)
    r = api.delete(f"/v1/share-snapshots/{snap_id}")
    assert r.status_code == 202, r.text
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
    r = api.delete(f"/v1/shares/{share_id}")
    assert r.status_code == 202, r.text
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"


def assert_no_file_path_holds_user_text(s: Settings) -> None:
    """Nothing under the stack's home (instance dirs, disks, the config drive's, the
    share pool, snapshots, export files, logs' names) is named after user text, and
    the host's saved domain specs hold none either."""
    seen = 0
    for root, dirs, files in os.walk(s.home, onerror=lambda _e: None):
        for name in [*dirs, *files]:
            seen += 1
            assert_no_trace(os.path.join(root, name), "a path")
    assert seen > 10
    for spec in (s.host_dir() / "instances").glob("*/domain.json"):
        assert_no_trace(spec.read_text(), str(spec))
    for d in (s.host_dir() / "instances").iterdir():
        assert re.fullmatch(r"[0-9a-f-]{36}", d.name), d
