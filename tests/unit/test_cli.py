"""The CLI without a server: formatting, argument parsing, name resolution, exit codes
and --wait, against an httpx MockTransport that answers in the API's shapes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import typer

from vmflow import cli
from vmflow.cli import common

SID = "d49ff7f9-ada8-416f-b57c-eb40ce192008"
OP = "2dcb7499-7771-4bb0-88ce-d81b00c3dcfb"
SERVER = {"id": SID, "name": "vm1", "status": "ACTIVE", "vm_state": "active",
          "task_state": None, "host": "hv1", "addresses": {"private": [{"addr": "10.0.0.5"}]},
          "locked": False, "fault": None, "metadata": {"a": "b"},
          "created_at": "2026-11-22T02:17:48.123456Z"}


def operation(status: str, step: str | None = None, progress: int | None = None,
              last_error: str | None = None) -> dict[str, Any]:
    return {"id": OP, "action": "create", "status": status, "step": step,
            "progress": progress, "attempt": 1, "last_error": last_error,
            "workflow_id": f"instance-{SID}"}


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], list[httpx.Request]]]:
    """Install a handler as the API; returns the list of requests it saw."""
    monkeypatch.setattr(common, "POLL_S", 0.0)
    monkeypatch.setattr(common, "state", common.State(url="http://api.test", token="tok"))

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        common.state.transport = httpx.MockTransport(record)
        return seen

    yield install


def error(code: int, message: str) -> httpx.Response:
    return httpx.Response(code, json={"error": {"code": code, "type": "X", "message": message}})


# ---- pure helpers ---------------------------------------------------------------------


def test_parse_properties() -> None:
    assert common.parse_properties(["a=b", "c=d=e", "empty="]) == {
        "a": "b", "c": "d=e", "empty": ""}
    with pytest.raises(typer.BadParameter):
        common.parse_properties(["novalue"])
    with pytest.raises(typer.BadParameter):
        common.parse_properties(["=x"])


def test_formatting() -> None:
    assert common.fmt(None) == common.fmt("") == common.fmt({}) == "-"
    assert common.fmt(True) == "yes"
    assert common.fmt("2026-11-22T02:17:48.123456Z") == "2026-11-22 02:17:48"
    assert common.fmt({"a": 1, "b": None}) == "a=1, b=-"
    assert common.fmt(["x", "y"]) == "x, y"
    assert common.fmt_addresses({"private": [{"addr": "10.0.0.5"}, {"addr": "fd00::5"}]}) == \
        "private=10.0.0.5, fd00::5"
    assert common.fmt_addresses({}) == "-"
    assert common.fmt_size(9306112) == "8.9 MiB"
    assert common.fmt_size(512) == "512 B"
    assert common.fmt_size(None) == "-"
    assert common.is_uuid(SID) and not common.is_uuid("vm1")


def test_find_by_name() -> None:
    items = [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}, {"id": "3", "name": "b"}]
    assert common.find_by_name(items, "a", "server")["id"] == "1"
    with pytest.raises(common.ApiError, match="no server named 'c'"):
        common.find_by_name(items, "c", "server")
    with pytest.raises(common.ApiError, match="2 servers are named 'b'; use an id: 2, 3"):
        common.find_by_name(items, "b", "server")


def test_error_message() -> None:
    assert common.error_message(error(409, "server is locked")) == "server is locked"
    assert common.error_message(httpx.Response(422, json={"detail": "bad"})) == "HTTP 422: bad"
    assert common.error_message(httpx.Response(502, text="Bad Gateway")) == "HTTP 502: Bad Gateway"


# ---- commands -------------------------------------------------------------------------


def test_list_renders_a_table_and_json(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json={"servers": [SERVER]}))
    assert cli.run(["server", "list"]) == 0
    text = capsys.readouterr().out
    assert "ID" in text.splitlines()[0] and SID in text and "private=10.0.0.5" in text
    assert seen[0].headers["authorization"] == "Bearer tok"

    assert cli.run(["server", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [SERVER]


def test_show_resolves_names(api, capsys: pytest.CaptureFixture[str]) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/v1/servers":
            return httpx.Response(200, json={"servers": [SERVER, {**SERVER, "id": "x",
                                                                  "name": "twin"},
                                                         {**SERVER, "id": "y", "name": "twin"}]})
        if r.url.path == f"/v1/servers/{SID}":
            return httpx.Response(200, json=SERVER)
        return error(404, f"server {r.url.path.rsplit('/', 1)[1]} not found")

    seen = api(handler)
    assert cli.run(["server", "show", "vm1"]) == 0
    assert [r.url.path for r in seen] == ["/v1/servers", f"/v1/servers/{SID}"]
    assert "a=b" in capsys.readouterr().out

    assert cli.run(["server", "show", "twin"]) == 1
    assert "2 servers are named 'twin'" in capsys.readouterr().err
    assert cli.run(["server", "show", "ffffffff-ffff-ffff-ffff-ffffffffffff"]) == 1
    assert "not found" in capsys.readouterr().err


def test_usage_errors_exit_2(api, capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: httpx.Response(500))
    assert cli.run(["server", "create", "vm1"]) == 2
    assert cli.run(["server", "create", "vm1", "--image", "tiny", "--flavor", "f",
                    "--property", "oops"]) == 2
    assert cli.run(["nonsense"]) == 2


def test_create_sends_the_body_and_conflicts_exit_1(api, tmp_path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ud = tmp_path / "ud"
    ud.write_bytes(b"#!/bin/sh\necho hi\n")
    seen = api(lambda r: error(409, "server name in use"))
    assert cli.run(["server", "create", "vm1", "--image", "tiny", "--flavor", "t1.micro",
                    "--property", "a=b", "--key-name", "k", "--user-data", str(ud)]) == 1
    assert json.loads(seen[0].content) == {
        "name": "vm1", "image": "tiny", "flavor": "t1.micro", "key_name": "k",
        "metadata": {"a": "b"}, "user_data": "IyEvYmluL3NoCmVjaG8gaGkK"}
    assert "server name in use" in capsys.readouterr().err


@pytest.mark.parametrize("final,code", [("succeeded", 0), ("failed", 1), ("compensated", 1)])
def test_create_wait_follows_the_operation(api, final: str, code: int,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    polls = iter([error(404, "not yet"), httpx.Response(200, json=operation("running")),
                  httpx.Response(200, json=operation("running", "copying image", 40)),
                  httpx.Response(200, json=operation(final, last_error="NoValidHost: none"
                                                     if final != "succeeded" else None))])

    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "POST":
            return httpx.Response(202, json={"server": {**SERVER, "status": "BUILD"},
                                             "operation": {"id": OP, "workflow_id": "w",
                                                           "status": "running"}})
        if r.url.path.startswith("/v1/operations/"):
            return next(polls)
        return httpx.Response(200, json=SERVER)

    api(handler)
    assert cli.run(["server", "create", "vm1", "--image", "tiny", "--flavor", "t1.micro",
                    "--wait"]) == code
    captured = capsys.readouterr()
    assert "ACTIVE" in captured.out
    assert ("NoValidHost" in captured.err) == (code == 1)


def test_delete_without_wait(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(202, json={"operation": {
        "id": OP, "workflow_id": f"instance-{SID}", "status": "running"}}))
    assert cli.run(["server", "delete", SID]) == 0
    assert seen[0].method == "DELETE" and seen[0].url.path == f"/v1/servers/{SID}"
    assert OP in capsys.readouterr().out


def test_unreachable_api_is_a_clear_error(api, capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    api(refuse)
    assert cli.run(["flavor", "list"]) == 1
    assert "cannot reach the vmflow API at http://api.test" in capsys.readouterr().err


def test_host_list(api, capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: httpx.Response(200, json={"hosts": [{
        "name": "hv1", "hostname": "vm", "vcpus": 2, "ram_mb": 5466, "disk_gb": 251,
        "traits": ["CUSTOM_A"], "virt_type": "qemu", "alive": True, "instances": 1,
        "used": {"vcpus": 1, "ram_mb": 256, "disk_gb": 1}}]}))
    assert cli.run(["host", "list"]) == 0
    out = capsys.readouterr().out
    assert "1 / 2" in out and "256 / 5466" in out and "CUSTOM_A" in out


# ---- instance actions -----------------------------------------------------------------


def accepted() -> httpx.Response:
    return httpx.Response(202, json={"operation": {"id": OP, "workflow_id": f"instance-{SID}",
                                                   "status": "running"}})


@pytest.mark.parametrize("args,body", [
    (["start"], {"os-start": None}),
    (["stop"], {"os-stop": None}),
    (["reboot"], {"reboot": {"type": "SOFT"}}),
    (["reboot", "--hard"], {"reboot": {"type": "HARD"}}),
    (["pause"], {"pause": None}),
    (["unpause"], {"unpause": None}),
    (["suspend"], {"suspend": None}),
    (["resume"], {"resume": None}),
    (["rescue"], {"rescue": {}}),
    (["rescue", "--image", "rescue-img"], {"rescue": {"rescue_image_ref": "rescue-img"}}),
    (["rescue", "--unrescue-after", "3600"], {"rescue": {"unrescue_after": 3600}}),
    (["unrescue"], {"unrescue": None}),
    (["rebuild", "tiny"], {"rebuild": {"imageRef": "tiny"}}),
    (["image-create", "snap1"], {"createImage": {"name": "snap1"}}),
    (["backup", "nightly", "--type", "daily", "--rotation", "7"],
     {"createBackup": {"name": "nightly", "backup_type": "daily", "rotation": 7}}),
    (["force-delete"], {"forceDelete": None}),
])
def test_actions_post_one_key(api, args: list[str], body: dict[str, Any],
                              capsys: pytest.CaptureFixture[str]) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/v1/servers":
            return httpx.Response(200, json={"servers": [SERVER]})
        return accepted()

    seen = api(handler)
    # the verb, then the server by name (resolved to its id), then the options
    assert cli.run(["server", args[0], "vm1", *args[1:]]) == 0
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/v1/servers"), ("POST", f"/v1/servers/{SID}/action")]
    assert json.loads(seen[1].content) == body
    text = capsys.readouterr().out
    assert OP in text and f"instance-{SID}" in text  # without --wait: the ids to follow


@pytest.mark.parametrize("final,code", [("succeeded", 0), ("failed", 1), ("compensated", 1)])
def test_action_wait_maps_the_outcome(api, final: str, code: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    polls = iter([httpx.Response(200, json={**operation("running", "shutting down", 30),
                                            "action": "stop"}),
                  httpx.Response(200, json={**operation(final, "powered off", 100),
                                            "action": "stop", "last_error":
                                            None if code == 0 else "domain would not stop"})])

    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "POST":
            return accepted()
        assert r.url.path == f"/v1/operations/{OP}"
        return next(polls)

    seen = api(handler)
    assert cli.run(["server", "stop", SID, "--wait"]) == code
    assert [r.method for r in seen] == ["POST", "GET", "GET"]
    captured = capsys.readouterr()
    assert final in captured.out
    assert ("domain would not stop" in captured.err) == (code == 1)


def test_action_conflict_prints_the_reason(api, capsys: pytest.CaptureFixture[str]) -> None:
    reason = "Cannot 'pause' an instance while it is in vm_state stopped; allowed from: active"
    api(lambda r: error(409, reason))
    assert cli.run(["server", "pause", SID, "--wait"]) == 1
    assert reason in capsys.readouterr().err.replace("\n", " ")


@pytest.mark.parametrize("args,body", [
    (["lock", SID], {"lock": None}),
    (["lock", SID, "--reason", "forensics"], {"lock": {"locked_reason": "forensics"}}),
    (["unlock", SID], {"unlock": None}),
    (["reset-state", SID, "--state", "error"], {"os-resetState": {"state": "error"}}),
    (["reset-state", SID, "--state", "active"], {"os-resetState": {"state": "active"}}),
])
def test_synchronous_actions_show_the_server(api, args: list[str], body: dict[str, Any],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json={**SERVER, "locked": True}))
    assert cli.run(["server", *args]) == 0
    assert json.loads(seen[0].content) == body
    assert "locked" in capsys.readouterr().out
    assert cli.run(["server", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["locked"] is True


def test_reset_state_needs_a_known_state(api) -> None:
    seen = api(lambda r: httpx.Response(200, json=SERVER))
    assert cli.run(["server", "reset-state", SID]) == 2
    assert cli.run(["server", "reset-state", SID, "--state", "stopped"]) == 2
    assert seen == []


# ---- metadata -------------------------------------------------------------------------


def test_metadata_set_unset_show(api, capsys: pytest.CaptureFixture[str]) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json={"metadata": {"a": "b", "role": "db"}})

    seen = api(handler)
    assert cli.run(["server", "set", SID, "--property", "role=db", "--property", "x=1=2"]) == 0
    assert (seen[0].method, seen[0].url.path) == ("POST", f"/v1/servers/{SID}/metadata")
    assert json.loads(seen[0].content) == {"metadata": {"role": "db", "x": "1=2"}}
    assert "role" in capsys.readouterr().out

    seen.clear()
    assert cli.run(["server", "unset", SID, "--property", "role", "--property", "a/b"]) == 0
    assert [(r.method, r.url.raw_path.decode()) for r in seen] == [
        ("DELETE", f"/v1/servers/{SID}/metadata/role"),
        ("DELETE", f"/v1/servers/{SID}/metadata/a%2Fb")]

    seen.clear()
    assert cli.run(["server", "metadata", SID]) == 0
    assert (seen[0].method, seen[0].url.path) == ("GET", f"/v1/servers/{SID}/metadata")
    assert "db" in capsys.readouterr().out


def test_metadata_usage_and_errors(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: error(404, "metadata key nope not found"))
    assert cli.run(["server", "set", SID]) == 2
    assert cli.run(["server", "set", SID, "--property", "novalue"]) == 2
    assert seen == []
    assert cli.run(["server", "unset", SID, "--property", "nope"]) == 1
    assert "metadata key nope not found" in capsys.readouterr().err


# ---- keypairs -------------------------------------------------------------------------

PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"
KEYPAIR = {"name": "k1", "fingerprint": "SHA256:abc", "public_key": "ssh-ed25519 AAAA k1",
           "type": "ssh", "created_at": "2026-11-22T02:17:48Z"}


def test_keypair_create_writes_the_private_key_0600(api, tmp_path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(201, json={"keypair": {**KEYPAIR,
                                                               "private_key": PRIVATE}}))
    key = tmp_path / "k1.pem"
    assert cli.run(["keypair", "create", "k1", "--private-key-file", str(key)]) == 0
    assert (seen[0].method, seen[0].url.path) == ("POST", "/v1/keypairs")
    assert json.loads(seen[0].content) == {"name": "k1"}
    assert key.read_text() == PRIVATE
    assert key.stat().st_mode & 0o777 == 0o600
    captured = capsys.readouterr()
    assert "SHA256:abc" in captured.out and "secret" not in captured.out + captured.err

    # never overwrite a key file: refused before the API makes a key nobody could keep
    seen.clear()
    assert cli.run(["keypair", "create", "k2", "--private-key-file", str(key)]) == 2
    assert seen == [] and key.read_text() == PRIVATE


def test_keypair_create_prints_a_generated_key_once(api,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: httpx.Response(201, json={"keypair": {**KEYPAIR, "private_key": PRIVATE}}))
    assert cli.run(["keypair", "create", "k1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == PRIVATE  # alone on stdout: `vmflow keypair create k1 > k1.pem`
    assert "save the private key now" in captured.err and "SHA256:abc" in captured.err


def test_keypair_import(api, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    pub = tmp_path / "id.pub"
    pub.write_text("ssh-ed25519 AAAA k1\n")
    seen = api(lambda r: httpx.Response(201, json={"keypair": KEYPAIR}))
    assert cli.run(["keypair", "create", "k1", "--public-key-file", str(pub)]) == 0
    assert json.loads(seen[0].content) == {"name": "k1", "public_key": "ssh-ed25519 AAAA k1"}
    captured = capsys.readouterr()
    assert "SHA256:abc" in captured.out and "warning" not in captured.err
    assert cli.run(["keypair", "create", "k1", "--public-key-file", str(pub),
                    "--private-key-file", str(tmp_path / "x")]) == 2


def test_keypair_list_show_delete(api, capsys: pytest.CaptureFixture[str]) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/v1/keypairs":
            return httpx.Response(200, json={"keypairs": [KEYPAIR]})
        if r.url.path == "/v1/keypairs/nope":
            return error(404, "keypair nope not found")
        if r.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json={"keypair": KEYPAIR})

    seen = api(handler)
    assert cli.run(["keypair", "list"]) == 0
    assert "k1" in capsys.readouterr().out
    assert cli.run(["keypair", "show", "k1"]) == 0
    assert "ssh-ed25519 AAAA k1" in capsys.readouterr().out
    assert cli.run(["keypair", "delete", "k1"]) == 0
    assert "deleted keypair k1" in capsys.readouterr().out
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/v1/keypairs"), ("GET", "/v1/keypairs/k1"), ("DELETE", "/v1/keypairs/k1")]
    assert cli.run(["keypair", "show", "nope"]) == 1
    assert "keypair nope not found" in capsys.readouterr().err


# ---- operations -----------------------------------------------------------------------


def test_operation_show_answers_why_it_is_stuck(api, capsys: pytest.CaptureFixture[str]) -> None:
    op = {**operation("running", "wait_agent", 80, "guest agent not answering"), "attempt": 3,
          "run_id": "0193-run"}
    seen = api(lambda r: httpx.Response(200, json=op))
    assert cli.run(["operation", "show", OP]) == 0
    assert seen[0].url.path == f"/v1/operations/{OP}"
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split(maxsplit=1)[1].strip()
            for line in text.splitlines() if len(line.split()) > 1}
    assert (rows["step"], rows["progress"], rows["attempt"]) == ("wait_agent", "80%", "3")
    assert rows["last_error"] == "guest agent not answering"
    assert rows["workflow_id"] == f"instance-{SID}"
    assert f"temporal workflow show -w instance-{SID} -r 0193-run" in text
    assert cli.run(["operation", "show", OP, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == op


# ---- backup schedules -----------------------------------------------------------------

BSID = "0b5c3d1e-8f6a-4a57-9d0e-3c2b1a098765"
SCHEDULE = {"id": BSID, "server_id": SID, "every": "6h", "cron": None, "backup_type": "daily",
            "rotation": 7, "paused": False, "created_at": "2026-11-22T02:17:48Z",
            "schedule_id": f"backup-{SID}-{BSID}", "next_run_at": None}


def schedules_api(request: httpx.Request, **answers: httpx.Response) -> httpx.Response:
    """GET list of the server's schedules, else `answers[method]`."""
    if request.method == "GET" and request.url.path == f"/v1/servers/{SID}/backup-schedules":
        return httpx.Response(200, json={"backup_schedules": [SCHEDULE]})
    return answers[request.method]


@pytest.mark.parametrize("args,body", [
    (["--every", "6h", "--type", "daily", "--rotation", "7"],
     {"every": "6h", "backup_type": "daily", "rotation": 7}),
    (["--cron", "0 3 * * *", "--type", "nightly", "--rotation", "2"],
     {"cron": "0 3 * * *", "backup_type": "nightly", "rotation": 2}),
])
def test_backup_schedule_create(api, args: list[str], body: dict[str, Any],
                                capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(201, json=SCHEDULE))
    assert cli.run(["server", "backup-schedule", "create", SID, *args]) == 0
    assert (seen[0].method, seen[0].url.path) == ("POST", f"/v1/servers/{SID}/backup-schedules")
    assert json.loads(seen[0].content) == body
    out = capsys.readouterr().out
    assert BSID in out and f"backup-{SID}-{BSID}" in out


def test_backup_schedule_create_usage_and_errors(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: error(400, "cron '61 * * * *': minute 61 is outside 0-59"))
    create = ["server", "backup-schedule", "create", SID, "--type", "d", "--rotation", "1"]
    assert cli.run(create) == 2  # neither
    assert cli.run([*create, "--every", "1h", "--cron", "0 * * * *"]) == 2  # both
    assert cli.run([*create[:-1], "0", "--every", "1h"]) == 2  # rotation >= 1
    assert seen == []
    assert cli.run([*create, "--cron", "61 * * * *"]) == 1
    assert "minute 61 is outside 0-59" in capsys.readouterr().err


def test_backup_schedule_list_show_and_prefix(api, capsys: pytest.CaptureFixture[str]) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        shown = {**SCHEDULE, "next_run_at": "2026-11-22T06:00:00Z"}
        return schedules_api(r, GET=httpx.Response(200, json=shown))

    seen = api(handler)
    assert cli.run(["server", "backup-schedule", "list", SID]) == 0
    text = capsys.readouterr().out
    assert BSID in text and "every 6h" in text and "daily" in text
    assert cli.run(["server", "backup-schedule", "list", SID, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [SCHEDULE]
    # a unique prefix of the id is enough
    assert cli.run(["server", "backup-schedule", "show", SID, BSID[:8]]) == 0
    assert "2026-11-22 06:00:00" in capsys.readouterr().out
    assert seen[-1].url.path == f"/v1/servers/{SID}/backup-schedules/{BSID}"
    assert cli.run(["server", "backup-schedule", "show", SID, "ffff"]) == 1
    assert "no backup schedules of server" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["pause", "unpause"])
def test_backup_schedule_pause_unpause(api, verb: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json={**SCHEDULE, "paused": verb == "pause"}))
    assert cli.run(["server", "backup-schedule", verb, SID, BSID]) == 0
    assert (seen[0].method, seen[0].url.path) == (
        "POST", f"/v1/servers/{SID}/backup-schedules/{BSID}/action")
    assert json.loads(seen[0].content) == {verb: None}
    assert ("yes" if verb == "pause" else "no") in capsys.readouterr().out


def test_backup_schedule_delete(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(204))
    assert cli.run(["server", "backup-schedule", "delete", SID, BSID]) == 0
    assert (seen[0].method, seen[0].url.path) == (
        "DELETE", f"/v1/servers/{SID}/backup-schedules/{BSID}")
    assert f"deleted backup schedule {BSID}" in capsys.readouterr().out


def test_backup_schedule_trigger(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(202, json=SCHEDULE))
    assert cli.run(["server", "backup-schedule", "trigger", SID, BSID]) == 0
    assert json.loads(seen[0].content) == {"trigger": None}
    assert f"vmflow server actions {SID}" in capsys.readouterr().out


def backup_action(result: str, op: str = OP, fault: str | None = None) -> dict[str, Any]:
    return {"action": "backup", "result": result, "operation_id": op, "fault": fault,
            "workflow_id": f"instance-{SID}", "start": "2026-11-22T02:17:48Z"}


OLD = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize("new,final,code", [
    (backup_action("running"), "succeeded", 0),
    (backup_action("running"), "failed", 1),
    (backup_action("skipped", fault="skipped: another operation (stop) is running"), None, 1),
])
def test_backup_schedule_trigger_wait(api, monkeypatch: pytest.MonkeyPatch,
                                      new: dict[str, Any], final: str | None, code: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import backup_schedules
    monkeypatch.setattr(backup_schedules, "POLL_S", 0.0)
    old = backup_action("succeeded", op=OLD)
    history = iter([[old], [old], [old, new]])  # before the trigger, then until it shows

    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == f"/v1/servers/{SID}/actions":
            return httpx.Response(200, json={"actions": next(history)})
        if r.url.path == f"/v1/operations/{OP}":
            assert final is not None
            return httpx.Response(200, json={**operation(final), "action": "backup",
                                             "last_error": "disk full" if code else None})
        return httpx.Response(202, json=SCHEDULE)

    seen = api(handler)
    assert cli.run(["server", "backup-schedule", "trigger", SID, BSID, "--wait"]) == code
    assert [r.url.path for r in seen][:2] == [
        f"/v1/servers/{SID}/actions", f"/v1/servers/{SID}/backup-schedules/{BSID}/action"]
    captured = capsys.readouterr()
    if new["result"] == "skipped":
        assert "another operation (stop) is running" in captured.err
        assert all("/v1/operations/" not in r.url.path for r in seen)
    else:
        assert (final or "") in captured.out
        assert ("disk full" in captured.err) == (code == 1)


def test_backup_schedule_trigger_wait_gives_up(api, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import backup_schedules
    monkeypatch.setattr(backup_schedules, "POLL_S", 0.0)
    monkeypatch.setattr(backup_schedules, "TRIGGER_APPEARS_S", 0.05)
    api(lambda r: httpx.Response(200, json={"actions": []}) if r.method == "GET"
        else httpx.Response(202, json=SCHEDULE))
    assert cli.run(["server", "backup-schedule", "trigger", SID, BSID, "--wait"]) == 1
    assert "overlap SKIP" in capsys.readouterr().err


# ---- admin: the ledger reconciler ------------------------------------------------------

TRIGGERED = {"schedule_id": "reconcile-ledger", "triggered_at": "2026-11-22T02:17:48Z"}
RESULT = {"removed": 3, "forgotten": 3, "reported": 1, "deferred": 0, "failed": 0,
          "skipped_hosts": [], "details": ["hv1: instance x is deleted (...): removing its "
                                           "running domain, dir, claim on hv1"]}


def ledger_run(status: str, at: str, result: dict[str, Any] | None = None,
               wid: str = "reconcile-ledger-2026-11-22T02:17:48Z") -> dict[str, Any]:
    return {"workflow_id": wid, "run_id": "r1", "scheduled_at": at, "started_at": at,
            "status": status, "result": result, "error": None}


def test_admin_reconcile_ledger_triggers(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(202, json=TRIGGERED))
    assert cli.run(["admin", "reconcile-ledger"]) == 0
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/v1/admin/reconcile-ledger")]
    assert "vmflow admin reconcile-ledger-status" in capsys.readouterr().out


@pytest.mark.parametrize("final,code", [
    (ledger_run("completed", "2026-11-22T02:17:48.5Z", RESULT), 0),
    (ledger_run("completed", "2026-11-22T02:17:48.5Z", {**RESULT, "failed": 1}), 1),
    ({**ledger_run("failed", "2026-11-22T02:17:48.5Z"), "error": "boom"}, 1),
])
def test_admin_reconcile_ledger_wait_follows_the_new_run(
        api, monkeypatch: pytest.MonkeyPatch, final: dict[str, Any], code: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import admin
    monkeypatch.setattr(admin, "POLL_S", 0.0)
    earlier = ledger_run("completed", "2026-11-22T02:07:48Z", {**RESULT, "removed": 9},
                         wid="reconcile-ledger-2026-11-22T02:07:48Z")
    new = {**final, "status": "running", "result": None}
    views = iter([[earlier], [earlier, new], [earlier, final]])

    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "POST":
            return httpx.Response(202, json=TRIGGERED)
        return httpx.Response(200, json={"schedule_id": "reconcile-ledger", "paused": False,
                                         "runs": next(views)})

    api(handler)
    assert cli.run(["admin", "reconcile-ledger", "--wait"]) == code
    out = capsys.readouterr().out
    assert final["workflow_id"] in out and "02:07:48" not in out  # the new run, not the old
    if final["result"]:
        assert "removing its running domain, dir, claim" in out
    else:
        assert "boom" in out


def test_admin_reconcile_ledger_wait_follows_a_going_run_when_skipped(
        api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import admin
    monkeypatch.setattr(admin, "POLL_S", 0.0)
    monkeypatch.setattr(admin, "SKIPPED_AFTER_S", 0.0)
    going = ledger_run("running", "2026-11-22T02:10:00Z")
    views = iter([[going], [{**going, "status": "completed", "result": RESULT}]])
    api(lambda r: httpx.Response(202, json=TRIGGERED) if r.method == "POST" else
        httpx.Response(200, json={"runs": next(views)}))
    assert cli.run(["admin", "reconcile-ledger", "--wait"]) == 0
    captured = capsys.readouterr()
    assert "overlap SKIP" in captured.err and "removed" in captured.out


def test_admin_reconcile_ledger_wait_gives_up(api, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import admin
    monkeypatch.setattr(admin, "POLL_S", 0.0)
    monkeypatch.setattr(admin, "RUN_APPEARS_S", 0.05)
    api(lambda r: httpx.Response(202, json=TRIGGERED) if r.method == "POST" else
        httpx.Response(200, json={"runs": []}))
    assert cli.run(["admin", "reconcile-ledger", "--wait"]) == 1
    assert "no run started" in capsys.readouterr().err


def test_admin_reconcile_ledger_status(api, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [ledger_run("completed", "2026-11-22T02:07:48Z", {**RESULT, "removed": 0}),
            ledger_run("completed", "2026-11-22T02:17:48Z", RESULT)]
    api(lambda r: httpx.Response(200, json={"schedule_id": "reconcile-ledger",
                                            "paused": False, "next_run_at": None,
                                            "runs": runs}))
    assert cli.run(["admin", "reconcile-ledger-status"]) == 0
    out = capsys.readouterr().out
    assert "Removed" in out and "removing its running domain, dir, claim" in out


def test_admin_reconcile_ledger_needs_admin(api, capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: error(403, "'reconcile-ledger' needs role admin; the token has member"))
    assert cli.run(["admin", "reconcile-ledger"]) == 1
    assert "needs role admin" in capsys.readouterr().err
