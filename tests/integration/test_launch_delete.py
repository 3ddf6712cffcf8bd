"""Launch and delete real QEMU guests through the API and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import httpx
import libvirt
import libvirt_qemu
import pytest

from tests.conftest import ROOT, db_session
from tests.integration.conftest import (
    CLEAN,
    create_server,
    delete_server,
    remains,
    wait_operation,
)
from tests.integration.guest import domain
from vmflow import stack
from vmflow.names import SA_HOST, SA_OPERATION, SA_PROJECT, SA_RESOURCE
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest


def agent_ping(server_id: str) -> object:
    dom = domain(server_id)
    return json.loads(libvirt_qemu.qemuAgentCommand(dom, '{"execute": "guest-ping"}', 5, 0))


async def workflow_search_attributes(s: Settings, server_id: str) -> list[dict[str, object]]:
    client = await connect(s)
    found = []
    async for wf in client.list_workflows(f'VmflowResource="instance-{server_id}"'):
        sa = wf.typed_search_attributes
        found.append({"type": wf.workflow_type, "op": sa.get(SA_OPERATION),
                      "host": sa.get(SA_HOST), "project": sa.get(SA_PROJECT),
                      "resource": sa.get(SA_RESOURCE)})
    return found


def vmflow_cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.stack_env(s)}
    return subprocess.run([str(ROOT / ".venv/bin/vmflow"), *args], env=env, text=True,
                          capture_output=True, timeout=300)


def test_cli_launches_a_guest_that_runs_and_delete_leaves_nothing(
    it_settings: Settings, api: httpx.Client
) -> None:
    created = vmflow_cli(it_settings, "server", "create", "demo", "--image", "tiny",
                         "--flavor", "t1.micro", "--wait")
    assert created.returncode == 0, created.stdout + created.stderr
    [server] = [x for x in api.get("/v1/servers").json()["servers"] if x["name"] == "demo"]
    assert (server["status"], server["host"], server["fault"]) == ("ACTIVE", "ithv", None)

    dom = domain(server["id"])
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert dom.UUIDString() == server["id"]
    assert agent_ping(server["id"]) == {"return": {}}

    # the operation is in Temporal (what the Web UI shows) with its search attributes
    wfs = asyncio.run(workflow_search_attributes(it_settings, server["id"]))
    assert {"type": "LaunchInstance", "op": "create", "host": "ithv",
            "project": server["project_id"], "resource": f"instance-{server['id']}"} in wfs

    [action] = api.get(f"/v1/servers/{server['id']}/actions").json()["actions"]
    assert (action["action"], action["result"], action["fault"]) == ("create", "succeeded", None)

    deleted = vmflow_cli(it_settings, "server", "delete", "demo", "--wait")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert api.get(f"/v1/servers/{server['id']}").status_code == 404
    assert remains(it_settings, server["id"]) == CLEAN


def test_cli_runs_the_ledger_reconciler(it_settings: Settings, api: httpx.Client) -> None:
    """The control worker made the schedule when the stack started; an admin runs it now
    and reads its result: the live host was listed and nothing failed."""
    done = vmflow_cli(it_settings, "admin", "reconcile-ledger", "--wait", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert run["workflow_id"].startswith("reconcile-ledger-") and run["status"] == "completed"
    assert "ithv" not in run["result"]["skipped_hosts"] and run["result"]["failed"] == 0
    status = vmflow_cli(it_settings, "admin", "reconcile-ledger-status")
    assert status.returncode == 0 and run["workflow_id"] in status.stdout, status.stderr


def test_guest_that_never_answers_is_destroyed_and_leaves_nothing(
    it_settings: Settings, api: httpx.Client
) -> None:
    """A failure after the domain is running: the boot deadline passes, compensation
    destroys and undefines the running domain and deletes its disk."""
    images = api.get("/v1/images").json()["images"]
    tiny = next(i for i in images if i["name"] == "tiny")
    broken = _register_broken_image(it_settings, tiny["id"])
    server_id, op_id = create_server(api, "broken", image=broken)
    op = wait_operation(api, op_id, timeout=240)
    assert op["status"] == "compensated", op
    server = api.get(f"/v1/servers/{server_id}").json()
    assert server["status"] == "ERROR"
    assert "guest agent did not answer" in server["fault"]
    assert remains(it_settings, server_id) == CLEAN
    assert delete_server(api, server_id)["status"] == "succeeded"


def _register_broken_image(s: Settings, tiny_id: str) -> str:
    """The tiny image, told to run a shell instead of its init: no agent, ever."""
    from vmflow.models import Image

    with db_session(s) as session:
        tiny = session.get(Image, tiny_id)
        assert tiny is not None
        props = {**tiny.properties, "os_command_line": "console=ttyS0 quiet rdinit=/bin/sh"}
        broken = Image(name="tiny-broken", status="active", disk_format="qcow2",
                       visibility="public", size=tiny.size, checksum=tiny.checksum,
                       location=tiny.location, properties=props)
        session.add(broken)
        session.commit()
        return broken.id


def test_no_valid_host_is_an_error_the_user_can_read(
    it_settings: Settings, api: httpx.Client
) -> None:
    r = api.post("/v1/flavors", json={"name": "gpu.tiny", "vcpus": 1, "ram": 256, "disk": 1,
                                      "extra_specs": {"trait:HW_GPU": "required"}})
    assert r.status_code in (200, 201), r.text
    server_id, op_id = create_server(api, "needs-gpu", flavor="gpu.tiny")
    op = wait_operation(api, op_id)
    assert op["status"] == "compensated"
    server = api.get(f"/v1/servers/{server_id}").json()
    assert server["status"] == "ERROR"
    assert server["fault"] == (
        "No valid host was found. 1 host(s) rejected: ithv: lacks trait HW_GPU.")
    assert remains(it_settings, server_id) == CLEAN
    assert delete_server(api, server_id)["status"] == "succeeded"
