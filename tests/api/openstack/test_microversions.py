"""Microversion negotiation shared by the compute and share facades (api/openstack/
microversion.py): both request headers, `latest`, 400 for a malformed version, 406
outside the range, the echo on every response, and the versions documents that answer
whatever is asked (the manila client asks for its own maximum while it discovers)."""

from __future__ import annotations

import httpx
import pytest

from api.openstack.compute import MICROVERSIONS as COMPUTE
from api.openstack.microversion import Version
from api.openstack.share import MICROVERSIONS as SHARE
from tests.api.conftest import World


async def test_negotiated_from_either_header_and_echoed(api: httpx.AsyncClient,
                                                        world: World) -> None:
    h = {"X-Auth-Token": world.alice.token}
    for sent, served in (({}, "2.1"), ({"X-OpenStack-Nova-API-Version": "2.50"}, "2.50"),
                         ({"OpenStack-API-Version": "compute 2.60"}, "2.60"),
                         ({"OpenStack-API-Version": "compute latest"}, str(COMPUTE.maximum))):
        r = await api.get("/compute/v2.1/flavors", headers={**h, **sent})
        assert r.status_code == 200, r.text
        assert r.headers["X-OpenStack-Nova-API-Version"] == served
        assert r.headers["OpenStack-API-Version"] == f"compute {served}"
        assert r.headers["X-OpenStack-Request-Id"].startswith("req-")
    r = await api.get("/share/v2/shares", headers={**h, "X-OpenStack-Manila-API-Version": "2.7"})
    assert r.headers["X-OpenStack-Manila-API-Version"] == "2.7", r.text


@pytest.mark.parametrize(("header", "code", "fault"), [
    ("3.0", 406, "notAcceptable"), ("2.999", 406, "notAcceptable"),
    ("two", 400, "badRequest"), ("2.01", 400, "badRequest")])
async def test_refused_versions(api: httpx.AsyncClient, world: World, header: str, code: int,
                                fault: str) -> None:
    r = await api.get("/compute/v2.1/flavors", headers={
        "X-Auth-Token": world.alice.token, "X-OpenStack-Nova-API-Version": header})
    assert r.status_code == code, r.text
    assert set(r.json()) == {fault}, r.json()


async def test_versions_documents_answer_any_version(api: httpx.AsyncClient) -> None:
    """manilaclient discovers with its own maximum (2.98) in the header."""
    r = await api.get("/share/", headers={"X-OpenStack-Manila-API-Version": "2.98"})
    assert r.status_code == 300, r.text
    current = [v for v in r.json()["versions"] if v["status"] == "CURRENT"]
    assert Version.parse(current[0]["version"]) == SHARE.maximum
    r = await api.get("/compute/", headers={"X-OpenStack-Nova-API-Version": "3.5"})
    assert r.status_code == 200, r.text
    assert r.json()["versions"][0]["id"] == "v2.0"
