"""The unmodified keystoneauth1 (what openstackclient, openstacksdk and Tempest use)
against the app served by uvicorn on loopback: discovery, the password, token and
application-credential plugins, the catalog lookup and the expiry it reads."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic, v3

from api.app import create_app
from tests.api.conftest import World
from tests.api.openstack.identity_support import V3, new_user
from vmflow import clouds, settings


@pytest.fixture(scope="module")
def served(vmflow_home: settings.Settings) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 and a free port; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _check(sess: ks_session.Session, base: str, project_id: str) -> None:
    assert sess.get_token()
    assert sess.get_endpoint(service_type="compute", interface="public") == \
        f"{base}/compute/v2.1"
    assert sess.get_endpoint(service_type="sharev2", interface="internal") == \
        f"{base}/share/v2/{project_id}"
    assert sess.get_project_id() == project_id
    ref = sess.auth.get_access(sess)
    assert timedelta(0) < ref.expires - datetime.now(UTC) <= timedelta(hours=24)
    assert ref.project_domain_id == "default" and ref.user_domain_name == "Default"


async def test_keystoneauth_password_token_and_app_credential(
        api: httpx.AsyncClient, world: World, served: str) -> None:
    u = await new_user(api, world, "ks-ka-ann")
    r = await api.post(f"{V3}/users/{u.id}/application_credentials", headers=u.h,
                       json={"application_credential": {"name": "ka"}})
    cred = r.json()["application_credential"]

    def run() -> None:
        # the generic plugin discovers from the unversioned /identity (as openstacksdk)
        pw = generic.Password(auth_url=f"{served}/identity", username=u.name,
                              password=u.password, project_name=u.project_name,
                              user_domain_name="Default", project_domain_name="Default")
        sess = ks_session.Session(auth=pw)
        _check(sess, served, u.project_id)
        tok = v3.Token(auth_url=f"{served}/identity/v3", token=sess.get_token(),
                       project_id=u.project_id)
        _check(ks_session.Session(auth=tok), served, u.project_id)
        ac = v3.ApplicationCredential(auth_url=f"{served}/identity/v3",
                                      application_credential_id=cred["id"],
                                      application_credential_secret=cred["secret"])
        _check(ks_session.Session(auth=ac), served, u.project_id)
        bad = v3.Password(auth_url=f"{served}/identity/v3", username=u.name,
                          password="wrong-password", project_name=u.project_name,
                          user_domain_name="Default", project_domain_name="Default")
        with pytest.raises(ks_exc.Unauthorized):
            ks_session.Session(auth=bad).get_token()

    await asyncio.to_thread(run)


async def test_clouds_yaml_of_make_up_serves_the_openstack_cli(
        world: World, served: str, tmp_path: Path) -> None:
    """The file vmflow.stack writes, read by the unmodified `openstack` command."""
    path = tmp_path / "clouds.yaml"
    assert clouds.write(path, clouds.render(served, world.admin.token))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": "vmflow",
           "HOME": str(tmp_path)}
    cli = Path(sys.executable).parent / "openstack"

    def run(*args: str) -> Any:
        done = subprocess.run([str(cli), *args, "-f", "json"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    issued = await asyncio.to_thread(run, "token", "issue")
    assert issued["project_id"] == world.admin.project_id
    assert issued["user_id"] == world.admin.user_id and issued["id"] != world.admin.token
    listed = await asyncio.to_thread(run, "project", "list")
    assert "admin" in {p["Name"] for p in listed}
    # somebody's own clouds.yaml is never overwritten; vmflow's own is
    theirs = tmp_path / "theirs.yaml"
    theirs.write_text("clouds: {}\n")
    assert not clouds.write(theirs, clouds.render(served, "x"))
    assert theirs.read_text() == "clouds: {}\n"
    assert clouds.write(path, clouds.render(served, "other-token"))
    assert "other-token" in path.read_text()


def test_stack_writes_the_vmflow_cloud(vmflow_home: settings.Settings, tmp_path: Path) -> None:
    """What `make up` runs: the home's clouds.yaml and the user's, with the admin token."""
    from vmflow import stack

    user_file = tmp_path / "config" / "clouds.yaml"
    written = stack._write_clouds(vmflow_home, user_file)
    assert written == [vmflow_home.home / "clouds.yaml", user_file]
    text = user_file.read_text()
    assert text == written[0].read_text()
    assert vmflow_home.admin_token_file.read_text().strip() in text
    assert f'"{vmflow_home.base_url}/identity/v3"' in text and "RegionOne" in text
    assert "OS_CLOUD=vmflow" in stack._os_env(vmflow_home, written)
    assert "OS_CLIENT_CONFIG_FILE" in stack._os_env(vmflow_home, written[:1])
