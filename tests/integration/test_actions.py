"""Every instance action on a real QEMU guest through the API: the domain state as
libvirt reports it and the API status agree, and every disallowed action is a 409
that changes nothing."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import CLEAN, act, action, delete_server, remains, wait_operation
from tests.integration.guest import EXPECTED_POWER, boot_id, kill_agent_and_acpid, power, sh
from vmflow.settings import Settings
from vmflow.states import TRANSITIONS

pytestmark = pytest.mark.guest

BODIES: dict[str, dict[str, Any]] = {
    "start": {"os-start": None}, "stop": {"os-stop": None},
    "reboot-soft": {"reboot": {"type": "SOFT"}}, "reboot-hard": {"reboot": {"type": "HARD"}},
    "pause": {"pause": None}, "unpause": {"unpause": None},
    "suspend": {"suspend": None}, "resume": {"resume": None},
    "rescue": {"rescue": {}}, "unrescue": {"unrescue": None},
}


def server(api: httpx.Client, server_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/servers/{server_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def launched(api: httpx.Client, name: str, **extra: Any) -> str:
    r = api.post("/v1/servers", json={"name": name, "image": "tiny", "flavor": "t1.micro",
                                      **extra})
    assert r.status_code == 202, r.text
    op = wait_operation(api, r.json()["operation"]["id"])
    assert op["status"] == "succeeded", op.get("last_error")
    return str(r.json()["server"]["id"])


def assert_disallowed_are_refused(api: httpx.Client, server_id: str) -> None:
    before = server(api, server_id)
    history = len(api.get(f"/v1/servers/{server_id}/actions").json()["actions"])
    for name, body in BODIES.items():
        if before["vm_state"] in TRANSITIONS[name].allowed_from:
            continue
        r = action(api, server_id, body)
        assert r.status_code == 409, (name, before["vm_state"], r.text)
        assert r.json()["error"]["message"]
    after = server(api, server_id)
    assert (after["vm_state"], after["task_state"]) == (before["vm_state"], before["task_state"])
    assert len(api.get(f"/v1/servers/{server_id}/actions").json()["actions"]) == history


def test_lifecycle_of_one_guest(api: httpx.Client, it_settings: Settings) -> None:
    sid = launched(api, "lifecycle")
    chain = [("stop", "SHUTOFF"), ("start", "ACTIVE"), ("pause", "PAUSED"),
             ("unpause", "ACTIVE"), ("suspend", "SUSPENDED"), ("resume", "ACTIVE"),
             ("reboot-soft", "ACTIVE"), ("reboot-hard", "ACTIVE"), ("rescue", "RESCUE"),
             ("unrescue", "ACTIVE")]
    assert_disallowed_are_refused(api, sid)
    for name, status in chain:
        boot = boot_id(sid) if name.startswith("reboot") else None
        op = act(api, sid, BODIES[name])
        assert op["status"] == "succeeded", (name, op)
        assert server(api, sid)["status"] == status, name
        assert power(sid) == EXPECTED_POWER[status], name
        if boot is not None:
            assert boot_id(sid) != boot, f"{name} did not restart the guest"
        if name == "rescue":  # the rescue image booted; the original disk is second, ro
            assert sh(sid, "grep -c ' /rescue ext4 ro' /proc/mounts")[1].strip() == "1"
        if name == "unrescue":
            assert sh(sid, "grep -c ' /rescue ' /proc/mounts")[1].strip() == "0"
        assert_disallowed_are_refused(api, sid)
    # a rescue that ends by itself: its timer starts the unrescue as the rescuer
    op = act(api, sid, {"rescue": {"unrescue_after": 1}})
    assert op["status"] == "succeeded", op
    deadline = time.monotonic() + 300
    while (now := server(api, sid))["status"] != "ACTIVE" or now["task_state"]:
        assert time.monotonic() < deadline, now
        time.sleep(1)
    assert power(sid) == "running"
    assert sh(sid, "grep -c ' /rescue ' /proc/mounts")[1].strip() == "0"
    actions = [a["action"] for a in api.get(f"/v1/servers/{sid}/actions").json()["actions"]]
    assert actions == ["create", *[name for name, _ in chain], "rescue", "unrescue"]
    assert delete_server(api, sid)["status"] == "succeeded"
    assert remains(it_settings, sid) == CLEAN


def test_soft_reboot_of_a_deaf_guest_escalates_to_hard(api: httpx.Client) -> None:
    sid = launched(api, "deaf")
    boot = boot_id(sid)
    kill_agent_and_acpid(sid)
    op = act(api, sid, BODIES["reboot-soft"])
    assert op["status"] == "succeeded", op.get("last_error")
    assert "escalated to hard" in op["last_error"]
    assert server(api, sid)["status"] == "ACTIVE" and power(sid) == "running"
    assert boot_id(sid) != boot  # the agent answers again: it is a fresh boot
    assert delete_server(api, sid)["status"] == "succeeded"


def test_user_data_and_metadata_reach_the_guest_on_a_config_drive(api: httpx.Client) -> None:
    key = api.post("/v1/keypairs", json={"name": "it-key"})
    assert key.status_code in (200, 201), key.text
    user_data = "#!/bin/sh\necho hello from user data\n"
    sid = launched(api, "configured", key_name="it-key", metadata={"role": "db"},
                   user_data=base64.b64encode(user_data.encode()).decode())
    rc, out = sh(sid, "cat /mnt/config/openstack/latest/user_data")
    assert (rc, out) == (0, user_data)
    rc, out = sh(sid, "cat /mnt/config/openstack/latest/meta_data.json")
    meta = json.loads(out)
    assert meta["uuid"] == sid and meta["meta"] == {"role": "db"}
    assert meta["public_keys"]["it-key"] == key.json()["keypair"]["public_key"]
    rc, out = sh(sid, "cat /mnt/config/openstack/latest/network_data.json")
    assert rc == 0 and set(json.loads(out)) == {"links", "networks", "services"}, out
    assert delete_server(api, sid)["status"] == "succeeded"
    api.delete("/v1/keypairs/it-key")


def test_guest_that_powers_itself_off_is_seen_by_the_reconciler(api: httpx.Client) -> None:
    sid = launched(api, "selfoff")
    sh(sid, "(sleep 1; poweroff) >/dev/null 2>&1 &")
    deadline = time.monotonic() + 60  # the schedule runs every 10 s in this stack
    while server(api, sid)["status"] != "SHUTOFF":
        assert time.monotonic() < deadline, server(api, sid)
        time.sleep(1)
    assert power(sid) == "shutoff"
    [sync] = [a for a in api.get(f"/v1/servers/{sid}/actions").json()["actions"]
              if a["action"] == "power-sync"]
    assert "active -> stopped" in sync["fault"]
    assert delete_server(api, sid)["status"] == "succeeded"


def test_delete_cancels_a_running_operation_then_deletes(
    api: httpx.Client, it_settings: Settings
) -> None:
    sid = launched(api, "cancelled")
    kill_agent_and_acpid(sid)  # so the soft reboot waits out its 10 s timeout
    r = action(api, sid, BODIES["reboot-soft"])
    assert r.status_code == 202, r.text
    reboot_op = r.json()["operation"]["id"]
    time.sleep(1)
    assert delete_server(api, sid)["status"] == "succeeded"
    reboot = api.get(f"/v1/operations/{reboot_op}").json()
    assert reboot["status"] in ("compensated", "failed"), reboot
    assert "cancelled" in (reboot["last_error"] or "")
    assert remains(it_settings, sid) == CLEAN


def test_create_with_unknown_key_creates_nothing(api: httpx.Client) -> None:
    before = len(api.get("/v1/servers").json()["servers"])
    r = api.post("/v1/servers", json={"name": "nokey", "image": "tiny", "flavor": "t1.micro",
                                      "key_name": "no-such-key"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "KeypairNotFound"
    assert len(api.get("/v1/servers").json()["servers"]) == before


