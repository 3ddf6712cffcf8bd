"""The CLI without a server: formatting, argument parsing, name resolution, exit codes
and --wait, against an httpx MockTransport that answers in the API's shapes (the
`api` fixture). Server actions, keypairs, schedules and the catalog commands are in
test_cli_*.py."""

from __future__ import annotations

import json

import httpx
import pytest
import typer

from tests.unit.cli_support import OP, SERVER, SID, error, operation
from vmflow import cli
from vmflow.cli import common

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
