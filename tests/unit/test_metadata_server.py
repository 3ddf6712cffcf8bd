"""The metadata server's request handling, in-process on loopback with a temp state
dir: a guest is known only by the packet's source address on its network (127.0.0.2
stands for a guest, 127.0.0.1 for anyone else); unknown source, unknown path and path
tricks are 404; what a request carries (headers, path) never picks the instance. And
the host side's checks on what it is handed."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.hypervisor.network import metadata, metadata_server
from vmflow.contracts.metadata import InstanceMetadata, MetadataRef
from vmflow.settings import Settings

NID = str(uuid.uuid4())
GUEST, OTHER = "127.0.0.2", "127.0.0.3"


def doc(ip: str, name: str, **change: object) -> InstanceMetadata:
    iid = str(uuid.uuid4())
    md = InstanceMetadata(
        instance_id=iid, network_id=NID, vni=4242, fixed_ip=ip, port_id=str(uuid.uuid4()),
        meta_data_json=json.dumps({"uuid": iid, "name": name}),
        network_data_json=json.dumps({"links": [], "networks": [], "services": []}),
        user_data_b64=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(), hostname=name,
        instance_type="m1.tiny", ami_id=str(uuid.uuid4()), public_ipv4="198.51.100.7")
    return dataclasses.replace(md, **change)  # type: ignore[arg-type]


def publish(root: Path, md: InstanceMetadata) -> None:
    f = metadata_server.doc_path(root, md.network_id, md.fixed_ip)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(asdict(md)))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A listener for network NID on loopback (no device: tests run anywhere), serving
    the networks dir of a host whose home is tmp_path."""
    root = metadata.networks_root(Settings(home=tmp_path, host="h"))
    root.mkdir(parents=True)
    listener = metadata_server.Listener(root, NID, ("127.0.0.1", 0), None)
    listener.start()
    try:
        yield root, listener.server_address[1]
    finally:
        listener.stop()


def get(port: int, path: str, source: str = GUEST, headers: str = "") -> tuple[int, bytes]:
    """GET as the tiny guest's nc does it (HTTP/1.0), from `source`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(source, 0)) as c:
        c.sendall(f"GET {path} HTTP/1.0\r\nHost: 169.254.169.254\r\n{headers}\r\n".encode())
        raw = b""
        while chunk := c.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_each_source_gets_its_own_documents(served: tuple[Path, int]) -> None:
    root, port = served
    mine, theirs = doc(GUEST, "mine"), doc(OTHER, "theirs", public_ipv4=None,
                                          user_data_b64=None)
    publish(root, mine)
    publish(root, theirs)
    status, body = get(port, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == mine.instance_id
    status, body = get(port, "/openstack/latest/meta_data.json", source=OTHER)
    assert status == 200 and json.loads(body)["uuid"] == theirs.instance_id
    assert get(port, "/openstack/latest/network_data.json") == (200, mine.network_data_json
                                                                .encode())
    assert get(port, "/openstack/latest/user_data") == (200, b"#!/bin/sh\necho hi\n")
    assert get(port, "/latest/user-data") == (200, b"#!/bin/sh\necho hi\n")
    assert get(port, "/openstack/latest/user_data", source=OTHER)[0] == 404  # none given
    assert get(port, "/openstack") == (200, b"latest")
    assert get(port, "/openstack/latest/") == (
        200, b"meta_data.json\nnetwork_data.json\nuser_data")
    assert get(port, "/openstack/latest", source=OTHER) == (
        200, b"meta_data.json\nnetwork_data.json")
    assert get(port, "/latest/meta-data/instance-id") == (200, mine.instance_id.encode())
    assert get(port, "/latest/meta-data/local-ipv4") == (200, GUEST.encode())
    assert get(port, "/latest/meta-data/public-ipv4") == (200, b"198.51.100.7")
    assert get(port, "/latest/meta-data/public-ipv4", source=OTHER)[0] == 404
    assert get(port, "/latest/meta-data/hostname") == (200, b"mine")
    assert get(port, "/latest/meta-data/instance-type") == (200, b"m1.tiny")
    assert get(port, "/latest/meta-data/ami-id") == (200, mine.ami_id.encode())
    assert get(port, "/latest/meta-data/placement/availability-zone") == (200, b"nova")
    assert get(port, "/latest/meta-data/") == (200, b"\n".join([
        b"ami-id", b"hostname", b"instance-id", b"instance-type", b"local-hostname",
        b"local-ipv4", b"placement/", b"public-ipv4"]))
    assert get(port, "/latest/meta-data", source=OTHER)[1].split(b"\n")[-1] == b"placement/"
    assert get(port, "/latest") == (200, b"meta-data/\nuser-data")


def test_an_unknown_source_gets_404_whatever_it_sends(served: tuple[Path, int]) -> None:
    root, port = served
    publish(root, doc(GUEST, "mine"))
    for path in ("/openstack/latest/meta_data.json", "/latest/meta-data/instance-id", "/"):
        assert get(port, path, source="127.0.0.1")[0] == 404
    # headers naming another address change nothing
    for header in (f"X-Forwarded-For: {GUEST}\r\n", f"X-Real-IP: {GUEST}\r\n",
                   f"X-Instance-ID: {doc(GUEST, 'x').instance_id}\r\n"):
        assert get(port, "/openstack/latest/meta_data.json", source="127.0.0.1",
                   headers=header)[0] == 404


def test_paths_only_match_the_fixed_layout(served: tuple[Path, int]) -> None:
    root, port = served
    publish(root, doc(GUEST, "mine"))
    publish(root, doc(OTHER, "theirs"))
    (root / "secret").write_text("do not serve")
    for path in (f"/openstack/latest/../../{NID}/metadata/{OTHER}.json",
                 "/openstack/latest/../../../secret", "/../secret", "/%2e%2e/secret",
                 f"/openstack/latest/meta_data.json/../../../{OTHER}.json",
                 "/openstack/2012-08-10/meta_data.json", "/latest/meta-data/nonexistent",
                 f"//{OTHER}/openstack/latest/meta_data.json", "/etc/passwd"):
        status, body = get(port, path)
        assert status == 404, (path, body)
        assert b"theirs" not in body and b"do not serve" not in body


def test_a_withdrawn_document_is_404_at_once(served: tuple[Path, int], tmp_path: Path) -> None:
    root, port = served
    md = doc(GUEST, "mine")
    publish(root, md)
    assert get(port, "/openstack/latest/meta_data.json")[0] == 200
    acts = metadata.MetadataActivities(Settings(home=tmp_path, host="h"))
    # another instance's ref (the address went to another guest since): kept
    acts.withdraw_metadata(MetadataRef(str(uuid.uuid4()), NID, GUEST))
    assert get(port, "/openstack/latest/meta_data.json")[0] == 200
    acts.withdraw_metadata(MetadataRef(md.instance_id, NID, GUEST))
    acts.withdraw_metadata(MetadataRef(md.instance_id, NID, GUEST))  # absent is fine
    assert not metadata_server.doc_path(root, NID, GUEST).exists()
    assert get(port, "/openstack/latest/meta_data.json")[0] == 404


def test_forget_port_drops_only_that_ports_documents(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, host="h")
    root = metadata.networks_root(s)
    a, b = doc(GUEST, "a"), doc(OTHER, "b")
    publish(root, a)
    publish(root, b)
    metadata.forget_port(s, NID, a.port_id)
    assert not metadata_server.doc_path(root, NID, GUEST).exists()
    assert metadata_server.doc_path(root, NID, OTHER).exists()
    metadata.forget_port(s, str(uuid.uuid4()), a.port_id)  # a network without any: fine


@pytest.mark.parametrize("change", [
    {"instance_id": "../x"}, {"network_id": "../../etc"}, {"port_id": "p"},
    {"fixed_ip": "10.0.0.1/../../x"}, {"fixed_ip": "fd00::1"}, {"public_ipv4": "a b"},
    {"vni": 0}, {"vni": 1 << 24}, {"meta_data_json": "{not json"},
])
def test_bad_input_is_refused_before_anything_is_written(change: dict[str, object],
                                                        tmp_path: Path) -> None:
    s = Settings(home=tmp_path, host="h", host_netns="nowhere")
    with pytest.raises(ApplicationError, match="invalid metadata input"):
        metadata.MetadataActivities(s).publish_metadata(doc(GUEST, "x", **change))
    assert not (tmp_path / "hosts").exists() or not list(tmp_path.rglob("*.json"))


def test_a_host_without_its_namespace_serves_no_metadata(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, host="h")
    with pytest.raises(ApplicationError, match="namespace"):
        metadata.MetadataActivities(s).publish_metadata(doc(GUEST, "x"))


def test_the_server_daemonizes_drops_to_nobody_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Started as the host side starts it: the command returns once its pid file is
    written (and it already takes SIGHUP as a rescan); it runs as nobody; SIGTERM ends
    it."""
    tmp_path.chmod(0o755)  # the networks dir is listed as nobody
    s = Settings(home=tmp_path, host="h")
    metadata.server_dir(s).mkdir(parents=True)
    metadata.networks_root(s).mkdir(parents=True)
    r = subprocess.run(metadata.server_argv(s), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pid = metadata.server_pid(s)
    assert pid is not None
    os.kill(pid, signal.SIGHUP)  # at once, as publish does: a rescan, not its end
    time.sleep(0.5)
    assert metadata.server_pid(s) == pid
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["65534"] * 4
    finally:
        metadata.stop_server(s)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()
    assert not metadata.server_dir(s).exists()
    assert metadata.server_argv(s)[:3] == [sys.executable, "-m",
                                           "activities.hypervisor.network.metadata_server"]
