"""`vmflow image|flavor|project|user|token|operation` against a MockTransport: the
upload is streamed in chunks (never one in-memory body), the download is checked
against the API's sha256, usage errors send nothing, and @calls refuses a malformed
route."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.cli_support import error
from vmflow import cli
from vmflow.cli import common, images

IID = "5a8f3c1e-0b2d-4e6f-8a9b-1c2d3e4f5a6b"
PID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


def image(status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {"id": IID, "name": "disk", "status": status, "disk_format": "qcow2",
            "container_format": "bare", "visibility": "private", "size": None, **fields}


class Streamed(httpx.BaseTransport):
    """Answers like the API and records how the upload's body arrived: chunk by chunk."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.chunks: list[bytes] = []
        self.status = "queued"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "PUT":
            assert not isinstance(request.stream, httpx.ByteStream)  # not a bytes body
            self.chunks = [bytes(c) for c in request.stream]  # type: ignore[union-attr]
            self.status = "active"
            return httpx.Response(204)
        request.read()
        return httpx.Response(201 if request.method == "POST" else 200,
                              json=image(self.status, size=sum(map(len, self.chunks))))


def test_image_create_streams_the_file_in_chunks(api, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(images, "CHUNK", 4096)
    data = bytes(range(256)) * 100  # 25600 bytes: 7 chunks
    disk = tmp_path / "disk.raw"
    disk.write_bytes(data)
    transport = Streamed()
    common.state.transport = transport
    assert cli.run(["image", "create", "disk", "--file", str(disk), "--disk-format", "raw",
                    "--public", "--json"]) == 0
    post, put, get = transport.requests
    assert json.loads(post.content) == {"name": "disk", "disk_format": "raw",
                                        "container_format": "bare", "visibility": "public"}
    assert (put.url.path, put.headers["content-length"]) == (f"/v1/images/{IID}/file",
                                                             str(len(data)))
    assert "transfer-encoding" not in put.headers
    assert [len(c) for c in transport.chunks] == [4096] * 6 + [1024]
    assert b"".join(transport.chunks) == data
    assert get.url.path == f"/v1/images/{IID}"
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "active"
    assert "upload disk.raw" in captured.err  # the progress bar


def test_image_create_usage_errors_send_nothing(api, tmp_path: Path) -> None:
    seen = api(lambda r: httpx.Response(500))
    assert cli.run(["image", "create", "d", "--disk-format", "raw", "--public",
                    "--visibility", "shared"]) == 2
    assert cli.run(["image", "create", "d", "--disk-format", "vmdk"]) == 2
    assert cli.run(["image", "create", "d", "--disk-format", "raw", "--file",
                    str(tmp_path / "missing")]) == 2
    assert cli.run(["image", "set", IID]) == 2  # nothing to change
    assert cli.run(["image", "set", IID, "--property", "novalue"]) == 2
    assert seen == []


def test_upload_failure_tells_how_to_retry(api, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    disk = tmp_path / "d.qcow2"
    disk.write_bytes(b"x" * 10)

    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "PUT":
            raise httpx.WriteError("connection reset")
        return httpx.Response(201, json=image())

    api(handler)
    assert cli.run(["image", "create", "d", "--file", str(disk), "--disk-format", "qcow2"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "connection to the vmflow API at http://api.test failed: connection reset" in err
    assert f"retry with: vmflow image upload {IID} --file {disk}" in err


@pytest.mark.parametrize("checksum,code", [("good", 0), ("bad", 1), (None, 0)])
def test_download_checks_the_sha256(api, tmp_path: Path, checksum: str | None, code: int,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = b"image bytes" * 1000
    digest = hashlib.sha256(data).hexdigest()
    headers = {} if checksum is None else {
        "X-Image-Checksum": digest if checksum == "good" else "0" * 64}
    seen = api(lambda r: httpx.Response(200, content=data, headers=headers))
    out = tmp_path / "out.img"
    assert cli.run(["image", "download", IID, "--file", str(out)]) == code
    assert seen[0].url.path == f"/v1/images/{IID}/file"
    err = capsys.readouterr().err
    if code == 0:
        assert out.read_bytes() == data
        assert ("verified" in err) == (checksum == "good")
    else:
        assert not out.exists() and "checksum mismatch" in err


def test_download_error_leaves_no_file(api, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: error(409, "image x is queued, not active"))
    out = tmp_path / "out.img"
    assert cli.run(["image", "download", IID, "--file", str(out)]) == 1
    assert not out.exists() and "not active" in capsys.readouterr().err


def test_member_accept_answers_for_the_tokens_project(api) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/v1/quota-sets":
            return httpx.Response(200, json={"quota_set": {"id": PID}})
        return httpx.Response(200, json={"image_id": IID, "member_id": PID,
                                         "status": json.loads(r.content)["status"]})

    seen = api(handler)
    assert cli.run(["image", "member-accept", IID]) == 0
    assert (seen[1].method, seen[1].url.path) == ("PUT", f"/v1/images/{IID}/members/{PID}")
    assert json.loads(seen[1].content) == {"status": "accepted"}
    seen.clear()
    assert cli.run(["image", "member-reject", IID, "--project", "other"]) == 0
    assert [(r.method, r.url.path) for r in seen] == [
        ("PUT", f"/v1/images/{IID}/members/other")]
    assert json.loads(seen[0].content) == {"status": "rejected"}


def test_flavor_commands_send_nova_shaped_bodies(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json={"flavor_access": []}))
    assert cli.run(["flavor", "create", "f/1", "--vcpus", "2", "--ram", "512", "--disk", "0",
                    "--private", "--property", "trait:HW_X=required"]) == 0
    assert json.loads(seen[0].content) == {"name": "f/1", "vcpus": 2, "ram": 512, "disk": 0,
                                           "is_public": False,
                                           "extra_specs": {"trait:HW_X": "required"}}
    assert cli.run(["flavor", "access-add", "f/1", "p1"]) == 0
    assert (seen[1].url.raw_path, json.loads(seen[1].content)) == (
        b"/v1/flavors/f%2F1/access", {"project": "p1"})
    assert "no project has access" in capsys.readouterr().out
    assert cli.run(["flavor", "access-remove", "f/1", "p1"]) == 0
    assert (seen[2].method, seen[2].url.raw_path) == ("DELETE", b"/v1/flavors/f%2F1/access/p1")
    assert cli.run(["flavor", "create", "f", "--vcpus", "0", "--ram", "1", "--disk", "0"]) == 2
    assert len(seen) == 3


def test_token_issue_reads_the_password_from_the_environment(
        api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VMFLOW_PASSWORD", "s3cret-pass")
    seen = api(lambda r: httpx.Response(201, json={"token": "tok-new", "user_id": "u",
                                                   "project_id": "p", "role": "member",
                                                   "expires_at": None}))
    assert cli.run(["token", "issue", "--username", "ann", "--project", "p1",
                    "--expires-in", "3600"]) == 0
    assert json.loads(seen[0].content) == {"username": "ann", "password": "s3cret-pass",
                                           "project": "p1", "expires_in": 3600}
    captured = capsys.readouterr()
    assert "tok-new" in captured.out and "export VMFLOW_TOKEN=tok-new" in captured.err
    assert cli.run(["user", "create", "ann", "--project", "p1", "--role", "owner"]) == 2
    assert len(seen) == 1


def test_operation_list_filters(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json={"operations": []}))
    assert cli.run(["operation", "list", "--resource", "r1", "--status", "failed",
                    "--limit", "5"]) == 0
    assert dict(seen[0].url.params) == {"limit": "5", "resource_id": "r1", "status": "failed"}


def test_calls_refuses_a_malformed_route() -> None:
    for route in ("GET v1/images", "FETCH /v1/images", "GET /images", "GET  /v1/images"):
        with pytest.raises(ValueError):
            common.calls(route)
    assert getattr(common.calls("GET /v1/x")(lambda: None), common.ROUTES_ATTR) == ("GET /v1/x",)
