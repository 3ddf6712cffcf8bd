"""`vmflow project|user|token ...` against the real API test app: an admin makes a
project and a user, the user gets a token with `token issue` and that token works."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import Caller, World
from tests.api.test_share_cli import vmflow


async def test_project_user_token(api: httpx.AsyncClient, world: World,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await vmflow(api, world.admin, "project", "create", "cli-proj", "--json")
    assert code == 0
    project = json.loads(capsys.readouterr().out)
    code, _ = await vmflow(api, world.admin, "project", "create", "cli-proj")
    assert code == 1 and "exists" in capsys.readouterr().err
    code, _ = await vmflow(api, world.admin, "project", "list", "--json")
    assert project["id"] in [p["id"] for p in json.loads(capsys.readouterr().out)]

    code, bridge = await vmflow(api, world.admin, "user", "create", "cli-user", "--project",
                                "cli-proj", "--password", "cli-secret-pw", "--role", "reader",
                                "--json")
    assert code == 0
    user = json.loads(capsys.readouterr().out)
    assert (user["project_id"], user["role"]) == (project["id"], "reader")
    assert json.loads(bridge.seen[0].content)["password"] == "cli-secret-pw"
    code, bridge = await vmflow(api, world.admin, "user", "create", "cli-short", "--project",
                                "cli-proj", "--password", "short")
    assert code == 1 and "password" in capsys.readouterr().err
    code, _ = await vmflow(api, world.admin, "user", "list", "--json")
    rows = [(u["name"], u["project_id"], u["role"]) for u in json.loads(capsys.readouterr().out)]
    assert ("cli-user", project["id"], "reader") in rows
    assert "cli-short" not in [r[0] for r in rows]

    code, _ = await vmflow(api, world.admin, "token", "issue", "--username", "cli-user",
                           "--project", "cli-proj", "--password", "cli-secret-pw", "--json")
    assert code == 0
    token = json.loads(capsys.readouterr().out)
    assert (token["user_id"], token["role"]) == (user["id"], "reader")
    reader = Caller(token["token"], project["id"], user["id"])
    code, _ = await vmflow(api, reader, "flavor", "list")
    assert code == 0 and "m1.tiny" in capsys.readouterr().out
    code, _ = await vmflow(api, reader, "project", "create", "cli-nope")
    assert code == 1 and "may only read" in capsys.readouterr().err

    code, _ = await vmflow(api, world.admin, "token", "issue", "--username", "cli-user",
                           "--project", "cli-proj", "--password", "wrong-password")
    assert code == 1 and "wrong username, password or project" in capsys.readouterr().err


async def test_lists_are_admin_only(api: httpx.AsyncClient, world: World,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["project", "list"], ["user", "list"]):
        code, _ = await vmflow(api, world.alice, *args)
        assert code == 1 and "needs role admin" in capsys.readouterr().err
