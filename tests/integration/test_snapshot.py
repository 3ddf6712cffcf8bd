"""createImage and createBackup on real QEMU guests through the API: the image holds
what the guest wrote, with a clean file system; a server launched from it boots and
has the data; consistency is recorded honestly (quiesced only when the agent froze);
os_require_quiesce turns a missing freeze into an image in error, never a guest left
frozen; stopped, paused and suspended servers snapshot too; rotation keeps exactly N."""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from tests.conftest import db_session
from tests.integration.conftest import act, action, delete_server, wait_operation
from tests.integration.guest import agent, kill_agent_and_acpid, power, sh
from tests.integration.test_actions import launched, server
from vmflow.models import Image
from vmflow.settings import Settings

pytestmark = pytest.mark.guest


def image(api: httpx.Client, image_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/images/{image_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def snapshot(api: httpx.Client, sid: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run createImage/createBackup to its end: (the operation, the image id)."""
    deadline = time.monotonic() + 10
    while True:
        r = action(api, sid, body)
        # the previous action's row says it ended a moment before its workflow closes
        if r.status_code != 409 or r.json()["error"]["type"] != "Conflict":
            break
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
    assert r.status_code == 202, r.text
    assert r.json()["image"]["status"] == "queued"
    return wait_operation(api, r.json()["operation"]["id"], timeout=300), r.json()["image_id"]


def download(api: httpx.Client, image_id: str, dst: Path) -> Path:
    with api.stream("GET", f"/v1/images/{image_id}/file") as r:
        assert r.status_code == 200, r.read()
        with dst.open("wb") as f:
            for chunk in r.iter_bytes(1 << 20):
                f.write(chunk)
    return dst


def check_file_system(qcow2: Path, wanted: dict[str, str]) -> None:
    """A standalone qcow2 whose ext4 is clean (e2fsck -fn, no journal to replay) and
    holds each file with its content, read without mounting (debugfs)."""
    info = subprocess.run(["qemu-img", "info", "-f", "qcow2", str(qcow2)], check=True,
                          capture_output=True, text=True).stdout
    assert "backing file" not in info, info
    raw = qcow2.with_suffix(".raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(qcow2), str(raw)],
                   check=True)
    try:
        fsck = subprocess.run(["e2fsck", "-fn", str(raw)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        for path, content in wanted.items():
            got = subprocess.run(["debugfs", "-R", f"cat {path}", str(raw)],
                                 capture_output=True, text=True).stdout
            assert got.strip() == content, (path, got)
    finally:
        raw.unlink(missing_ok=True)


def freeze_status(sid: str) -> str:
    return str(agent(sid, "guest-fsfreeze-status"))


def wait_agent(sid: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            agent(sid, "guest-ping")
            return
        except Exception:
            assert time.monotonic() < deadline, "the guest agent did not come back"
            time.sleep(0.5)


def test_snapshot_of_a_running_guest_is_quiesced_clean_and_boots(
        api: httpx.Client, it_settings: Settings, tmp_path: Path) -> None:
    sid = launched(api, "snap-src")
    token = uuid.uuid4().hex
    # synced before, and written but not synced: a freeze flushes it into the copy
    assert sh(sid, f"echo {token} > /synced.txt && sync && echo {token}-late > /late.txt")[0] == 0
    op, image_id = snapshot(api, sid, {"createImage": {"name": "snap-of-src",
                                                       "metadata": {"purpose": "it"}}})
    assert op["status"] == "succeeded", op.get("last_error")
    print(f"\nsnapshot of a running guest: {op['last_error']}")  # the freeze window, measured
    for line in (it_settings.log_dir / "hypervisor.log").read_text().splitlines():
        if f"freeze window of {sid}" in line:
            print(line.split("freeze window of ", 1)[1])
    img = image(api, image_id)
    assert img["status"] == "active" and img["size"] and img["checksum"]
    props = img["properties"]
    assert (props["consistency"], props["snapshot_source"], props["image_type"]) == (
        "quiesced", "running", "snapshot")
    assert (props["instance_uuid"], props["purpose"]) == (sid, "it")
    assert server(api, sid)["status"] == "ACTIVE" and server(api, sid)["task_state"] is None
    assert freeze_status(sid) == "thawed"
    assert not list((it_settings.host_dir() / "instances" / sid).glob("snap-*"))

    f = download(api, image_id, tmp_path / "snap.qcow2")
    assert hashlib.sha256(f.read_bytes()).hexdigest() == img["checksum"]
    check_file_system(f, {"/synced.txt": token, "/late.txt": f"{token}-late"})

    # a server launched from the snapshot boots like its base and has the data
    r = api.post("/v1/servers", json={"name": "snap-child", "image": image_id,
                                      "flavor": "t1.micro"})
    assert r.status_code == 202, r.text
    child = r.json()["server"]["id"]
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
    assert sh(child, "cat /synced.txt /late.txt")[1].split() == [token, f"{token}-late"]
    for s in (child, sid):
        assert delete_server(api, s)["status"] == "succeeded"


def test_without_an_agent_the_snapshot_is_crash_consistent(api: httpx.Client) -> None:
    sid = launched(api, "snap-noagent")
    assert sh(sid, "echo before > /before.txt && sync")[0] == 0
    kill_agent_and_acpid(sid)
    op, image_id = snapshot(api, sid, {"createImage": {"name": "snap-noagent"}})
    assert op["status"] == "succeeded", op.get("last_error")
    img = image(api, image_id)
    assert (img["status"], img["properties"]["consistency"]) == ("active", "crash-consistent")
    assert server(api, sid)["status"] == "ACTIVE"
    assert delete_server(api, sid)["status"] == "succeeded"


def require_quiesce_image(s: Settings) -> str:
    """The tiny image again, with os_require_quiesce=yes (a row sharing its data)."""
    with db_session(s) as session:
        tiny = session.exec(select(Image).where(Image.name == "tiny",
                                                Image.status == "active")).one()
        copy = Image(name=f"tiny-rq-{uuid.uuid4().hex[:6]}", status="active",
                     disk_format=tiny.disk_format, visibility="public", size=tiny.size,
                     checksum=tiny.checksum, location=tiny.location,
                     properties={**tiny.properties, "os_require_quiesce": "yes"})
        session.add(copy)
        session.commit()
        return copy.id


def test_require_quiesce_with_a_hung_agent_fails_and_leaves_the_guest_thawed(
        api: httpx.Client, it_settings: Settings) -> None:
    """The agent is stopped (SIGSTOP) during the freeze, so libvirt gives up on it; it
    wakes later and runs the queued freeze. The snapshot must fail (quiesce required),
    the image be in error with the reason, and the guest end thawed."""
    r = api.post("/v1/servers", json={"name": "snap-rq", "image": require_quiesce_image(
        it_settings), "flavor": "t1.micro"})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
    started = agent(sid, "guest-exec", {"path": "/bin/sh", "arg": [
        "-c", "p=$(pidof qemu-ga); (sleep 1; kill -STOP $p; sleep 15; kill -CONT $p) "
              "</dev/null >/dev/null 2>&1 &"]})
    assert "pid" in started  # type: ignore[operator]
    time.sleep(2)
    op, image_id = snapshot(api, sid, {"createImage": {"name": "snap-rq"}})
    assert op["status"] in ("compensated", "failed"), op
    assert "os_require_quiesce" in op["last_error"]
    img = image(api, image_id)
    assert img["status"] == "error"
    assert "os_require_quiesce is set but the guest agent did not freeze" in img["fault"]
    srv = server(api, sid)
    assert (srv["status"], srv["task_state"]) == ("ACTIVE", None)
    wait_agent(sid)
    deadline = time.monotonic() + it_settings.snapshot_thaw_deadline + 10
    while freeze_status(sid) != "thawed":
        assert time.monotonic() < deadline, "the guest stayed frozen"
        time.sleep(0.5)
    assert sh(sid, "echo writable > /after.txt && cat /after.txt")[1].strip() == "writable"
    assert delete_server(api, sid)["status"] == "succeeded"


@pytest.mark.parametrize("state,how,source", [
    ("SHUTOFF", {"os-stop": None}, "stopped"),
    ("PAUSED", {"pause": None}, "paused"),
    ("SUSPENDED", {"suspend": None}, "suspended"),
])
def test_snapshot_of_a_server_that_does_not_run(api: httpx.Client, tmp_path: Path,
                                                state: str, how: dict[str, Any],
                                                source: str) -> None:
    sid = launched(api, f"snap-{source}")
    token = uuid.uuid4().hex
    assert sh(sid, f"echo {token} > /data.txt && sync")[0] == 0
    assert act(api, sid, how)["status"] == "succeeded"
    before = power(sid)
    op, image_id = snapshot(api, sid, {"createImage": {"name": f"snap-{source}"}})
    assert op["status"] == "succeeded", op.get("last_error")
    img = image(api, image_id)
    assert (img["status"], img["properties"]["consistency"],
            img["properties"]["snapshot_source"]) == ("active", "crash-consistent", source)
    srv = server(api, sid)
    assert (srv["status"], srv["task_state"], power(sid)) == (state, None, before)
    f = download(api, image_id, tmp_path / "snap.qcow2")
    if source == "stopped":  # shut down cleanly: the disk is clean as it is
        check_file_system(f, {"/data.txt": token})
    assert delete_server(api, sid)["status"] == "succeeded"


def test_backup_rotation_keeps_exactly_n_of_a_type(api: httpx.Client) -> None:
    sid = launched(api, "backup-rot")
    assert act(api, sid, {"os-stop": None})["status"] == "succeeded"  # fast, offline copies

    def backup(backup_type: str, rotation: int) -> str:
        op, image_id = snapshot(api, sid, {"createBackup": {
            "name": f"{backup_type}-{uuid.uuid4().hex[:4]}", "backup_type": backup_type,
            "rotation": rotation}})
        assert op["status"] == "succeeded", op.get("last_error")
        return image_id

    weekly = backup("weekly", 1)
    daily = [backup("daily", 2) for _ in range(3)]

    def live(backup_type: str) -> list[str]:
        return [i["id"] for i in api.get("/v1/images").json()["images"]
                if i["properties"].get("instance_uuid") == sid
                and i["properties"].get("backup_type") == backup_type
                and i["status"] == "active"]

    assert sorted(live("daily")) == sorted(daily[1:])  # the oldest went
    assert live("weekly") == [weekly]  # another type is not touched
    assert api.get(f"/v1/images/{daily[0]}").status_code == 404  # deleted: gone for all
    # rotation 0 (Nova): every backup of that type goes, the new one too
    zero = backup("daily", 0)
    assert live("daily") == []
    assert api.get(f"/v1/images/{zero}").status_code == 404
    assert live("weekly") == [weekly]
    assert delete_server(api, sid)["status"] == "succeeded"
