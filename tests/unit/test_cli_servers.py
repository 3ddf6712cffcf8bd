"""`vmflow server` actions and metadata, and `vmflow keypair`, against a MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.unit.cli_support import OP, SERVER, SID, accepted, error, operation
from vmflow import cli

# ---- instance actions -----------------------------------------------------------------


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
    (["shelve"], {"shelve": None}),
    (["shelve-offload"], {"shelveOffload": None}),
    (["unshelve"], {"unshelve": None}),
    (["unshelve", "--host", "h2"], {"unshelve": {"host": "h2"}}),
    (["evacuate"], {"evacuate": None}),
    (["evacuate", "--host", "hv2"], {"evacuate": {"host": "hv2"}}),
    (["resize", "m1.small"], {"resize": {"flavorRef": "m1.small"}}),
    (["resize-confirm"], {"confirmResize": None}),
    (["resize-revert"], {"revertResize": None}),
    (["migrate"], {"migrate": None}),
    (["migrate", "--host", "hv2"], {"migrate": {"host": "hv2"}}),
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


def test_a_server_on_a_later_page_is_found_by_name(api, capsys: pytest.CaptureFixture[str]) -> None:
    """The list answers a page at a time: the CLI follows `next` to the end."""
    other = {**SERVER, "id": "00000000-0000-4000-8000-000000000001", "name": "vm0"}

    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/v1/servers" and "marker" not in r.url.params:
            return httpx.Response(200, json={
                "servers": [other], "next": f"{r.url}?limit=1&marker={other['id']}"})
        if r.url.path == "/v1/servers":
            return httpx.Response(200, json={"servers": [SERVER], "next": None})
        return accepted()

    seen = api(handler)
    assert cli.run(["server", "stop", "vm1"]) == 0
    assert [r.url.params.get("marker") for r in seen[:2]] == [None, other["id"]]
    assert (seen[2].method, seen[2].url.path) == ("POST", f"/v1/servers/{SID}/action")
    capsys.readouterr()


def test_a_list_that_never_ends_is_an_error(api) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"servers": [], "next": str(r.url)})

    api(handler)
    assert cli.run(["server", "list"]) != 0
