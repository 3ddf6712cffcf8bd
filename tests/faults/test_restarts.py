"""The stack's own services killed dead in the middle of an operation, then restarted
the way `make up` does: the Temporal dev server (its database file persists), a host's
libvirtd, nfs-ganesha and PostgreSQL (this tier's database). Every operation finishes,
and nothing is made twice (one domain, one image, one export)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import libvirt
import pytest

from activities.storage.ganesha import GaneshaExports
from tests.faults.test_worker_crashes import wait_step
from tests.integration.conftest import (
    CLEAN,
    action,
    create_server,
    delete_server,
    ledger_audit,
    remains,
    wait_operation,
)
from tests.integration.guest import power
from tests.integration.test_shares import allow, create_share, wait_rules
from tests.integration.test_snapshot import freeze_status, image
from tests.postgres import Postgres
from vmflow import ganesha_config, hostbed, stack
from vmflow.settings import Settings

pytestmark = pytest.mark.guest


def kill_temporal(s: Settings) -> None:
    assert stack.kill_component(s, "temporal") is not None


def kill_libvirtd(s: Settings) -> None:
    pid = hostbed.host(s, s.host).pid("libvirtd")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_ganesha(s: Settings) -> None:
    assert stack.kill_component(s, "ganesha") is not None


DB_DOWN_S = 5.0  # long enough for the steps under way to fail against it and retry
KILLS: dict[str, Callable[[Settings], None]] = {
    "temporal": kill_temporal, "libvirtd": kill_libvirtd, "ganesha": kill_ganesha}


def restart_after(s: Settings, what: str, request: pytest.FixtureRequest) -> None:
    if what == "postgres":  # not the stack's to start: down a while, then back
        pg: Postgres = request.getfixturevalue("postgres")
        pg.kill()
        time.sleep(DB_DOWN_S)
        pg.start()
        return
    KILLS[what](s)
    stack.up(s)  # `make up`: starts again whatever is not running


def domains_of(s: Settings, server_id: str) -> list[str]:
    conn = libvirt.open(s.libvirt_uri)
    return [d.name() for d in conn.listAllDomains() if d.UUIDString() == server_id]


def images_named(api: httpx.Client, name: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = api.get("/v1/images").json()["images"]
    return [i for i in listed if i["name"] == name]


@pytest.mark.parametrize("what", ["temporal", "libvirtd", "postgres"])
def test_launch_survives_a_restart(what: str, it_settings: Settings, api: httpx.Client,
                                   request: pytest.FixtureRequest) -> None:
    sid, op_id = create_server(api, f"restart-launch-{what}")
    wait_step(api, op_id, {"starting", "waiting for the guest agent"})
    restart_after(it_settings, what, request)
    op = wait_operation(api, op_id, timeout=300)
    assert op["status"] == "succeeded", op
    srv = api.get(f"/v1/servers/{sid}").json()
    assert (srv["status"], srv["task_state"], power(sid)) == ("ACTIVE", None, "running")
    assert len(domains_of(it_settings, sid)) == 1
    assert ledger_audit(it_settings) == {"domains": [], "dirs": []}
    assert delete_server(api, sid)["status"] == "succeeded"
    assert remains(it_settings, sid) == CLEAN


@pytest.fixture(scope="module")
def snap_server(it_settings: Settings, api: httpx.Client) -> Iterator[str]:
    """One guest for the snapshot cases: each leaves it as it found it (or fails)."""
    sid, op_id = create_server(api, "restart-snap")
    assert wait_operation(api, op_id)["status"] == "succeeded"
    yield sid
    assert delete_server(api, sid)["status"] == "succeeded"
    assert remains(it_settings, sid) == CLEAN


@pytest.mark.parametrize("what", ["temporal", "libvirtd", "postgres"])
def test_snapshot_survives_a_restart(what: str, it_settings: Settings, api: httpx.Client,
                                     snap_server: str, request: pytest.FixtureRequest) -> None:
    sid = snap_server
    name = f"restart-snap-{what}-{sid[:8]}"
    r = action(api, sid, {"createImage": {"name": name}})
    assert r.status_code == 202, r.text
    op_id, image_id = r.json()["operation"]["id"], r.json()["image_id"]
    wait_step(api, op_id, {"copying the disk"})
    restart_after(it_settings, what, request)
    op = wait_operation(api, op_id, timeout=300)
    assert op["status"] in ("succeeded", "compensated"), op
    img = image(api, image_id)
    if op["status"] == "succeeded":
        assert img["status"] == "active", img
    else:
        assert img["status"] == "error" and img["fault"], img
    assert [i["id"] for i in images_named(api, name)] == [image_id]  # one image, not two
    srv = api.get(f"/v1/servers/{sid}").json()
    assert (srv["status"], srv["task_state"], power(sid)) == ("ACTIVE", None, "running")
    assert freeze_status(sid) == "thawed"
    assert not list((it_settings.host_dir() / "instances" / sid).glob("snap-*"))
    assert ledger_audit(it_settings) == {"domains": [], "dirs": []}


@pytest.mark.parametrize("what", ["temporal", "ganesha", "postgres"])
def test_share_access_change_survives_a_restart(what: str, it_settings: Settings,
                                                api: httpx.Client,
                                                request: pytest.FixtureRequest) -> None:
    share_id, op_id = create_share(api, f"restart-access-{what}", 1)
    assert wait_operation(api, op_id)["status"] == "succeeded"
    allow(api, share_id, "10.254.1.7", "rw")
    restart_after(it_settings, what, request)  # while the rule is still on its way, or just after
    listed = wait_rules(api, share_id, timeout=180)
    assert [(r["access_to"], r["state"]) for r in listed] == [("10.254.1.7", "active")]
    share = api.get(f"/v1/shares/{share_id}").json()
    assert share["access_rules_status"] == "active", share
    exports = GaneshaExports(it_settings)
    export_id = exports.export_id(share_id)
    assert export_id is not None
    served = [eid for eid, path in exports.active_exports().items()
              if share_id in path]
    assert served == [export_id]  # served once, under its own id
    assert "10.254.1.7" in (ganesha_config.exports_dir(it_settings)
                            / f"{share_id}.conf").read_text()
    r = api.delete(f"/v1/shares/{share_id}")
    assert r.status_code == 202, r.text
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
    assert api.get(f"/v1/shares/{share_id}").status_code == 404
    assert exports.export_id(share_id) is None
    assert not [p for p in exports.active_exports().values() if share_id in p]

