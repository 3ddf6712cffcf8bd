"""Manila's version documents and microversion headers at /share."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from manilaclient import api_versions
from manilaclient.v2.services import ServiceManager

from tests.api.conftest import World
from tests.api.openstack.share_support import h, url


async def test_root_lists_both_versions_with_300(api: httpx.AsyncClient) -> None:
    r = await api.get("/share/")
    assert r.status_code == 300
    v1, v2 = r.json()["versions"]
    assert (v1["id"], v1["status"]) == ("v1.0", "DEPRECATED")
    assert (v2["id"], v2["status"], v2["version"], v2["min_version"]) == \
        ("v2.0", "CURRENT", "2.80", "2.0")
    assert v2["links"][-1] == {"rel": "self", "href": "http://vmflow/share/v2/"}
    r = await api.get("/share/v2/")
    assert r.status_code == 200 and r.json()["versions"][0]["id"] == "v2.0"


async def test_manilaclient_reads_the_version_range(api: httpx.AsyncClient) -> None:
    body: dict[str, Any] = (await api.get("/share/")).json()
    client = SimpleNamespace(get_with_base_url=lambda _url: (None, body))
    services = ServiceManager(SimpleNamespace(client=client, api_version=None))
    low, high = api_versions._get_server_version_range(SimpleNamespace(services=services))
    assert (low.get_string(), high.get_string()) == ("2.0", "2.80")


async def test_microversion_negotiated_from_either_header_and_echoed(
        api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    r = await api.get(url(a, "/types"), headers={
        "X-Auth-Token": a.token, "OpenStack-API-Version": "shared-file-system 2.47"})
    assert r.status_code == 200
    assert r.headers["OpenStack-API-Version"] == "shared-file-system 2.47"
    assert r.headers["X-OpenStack-Manila-API-Version"] == "2.47"
    assert r.headers["X-OpenStack-Request-Id"].startswith("req-")
    r = await api.get(url(a, "/types"), headers=h(a, "2.81"))
    assert r.status_code == 406
    r = await api.get(url(a, "/types"), headers=h(a, None))
    assert r.headers["X-OpenStack-Manila-API-Version"] == "2.0"


async def test_project_in_url_must_be_the_tokens(api: httpx.AsyncClient, world: World) -> None:
    # Manila (api/openstack/wsgi.py): another project's id in the URL is a malformed URL
    for who in (world.alice, world.admin):
        r = await api.get(f"/share/v2/{world.bob.project_id}/shares", headers=h(who))
        assert r.status_code == 400, r.text
        assert r.json() == {"badRequest": {"code": 400, "message": "Malformed request url"}}
    r = await api.get("/share/v2/shares", headers=h(world.alice))
    assert r.status_code == 200


async def test_unauthenticated_is_401_in_manilas_shape(api: httpx.AsyncClient,
                                                       world: World) -> None:
    r = await api.get(url(world.alice, "/shares"))
    assert r.status_code == 401 and "unauthorized" in r.json()
