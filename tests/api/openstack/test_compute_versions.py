"""Nova's version documents, checked with Tempest's versions schemas (and its
test_versions assertions: v2.0 listed first, every self link answers)."""

from __future__ import annotations

import httpx
from tempest.lib.api_schema.response.compute.v2_1 import versions as schema

from tests.api.conftest import World
from tests.api.openstack.test_compute_servers_support import validate


async def test_list_versions_v20_first_then_current_v21(api: httpx.AsyncClient) -> None:
    r = await api.get("/compute/")
    body = validate(schema.list_versions, r)
    ids = [v["id"] for v in body["versions"]]
    assert ids == ["v2.0", "v2.1"]
    current = body["versions"][1]
    assert (current["status"], current["version"], current["min_version"]) == \
        ("CURRENT", "2.79", "2.1")
    assert current["links"] == [{"rel": "self", "href": "http://vmflow/compute/v2.1/"}]
    assert r.headers["X-OpenStack-Request-Id"].startswith("req-")


async def test_each_self_link_shows_its_version(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/compute/")).json()["versions"]
    for v in listed:
        path = v["links"][0]["href"].removeprefix("http://vmflow")
        for p in (path, path.rstrip("/")):
            r = await api.get(p)
            body = validate(schema.get_one_version, r)
            assert body["version"]["id"] == v["id"]
            assert body["version"]["media-types"][0]["type"] == \
                "application/vnd.openstack.compute+json;version=2.1"


async def test_versions_need_no_token_but_servers_do(api: httpx.AsyncClient,
                                                     world: World) -> None:
    assert (await api.get("/compute/v2.1/")).status_code == 200
    r = await api.get("/compute/v2.1/servers")
    assert r.status_code == 401
    assert "unauthorized" in r.json()
    assert (await api.get("/compute/v3/")).status_code == 404


async def test_legacy_header_echoed(api: httpx.AsyncClient) -> None:
    r = await api.get("/compute/v2.1/", headers={"X-OpenStack-Nova-API-Version": "2.47"})
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.47"
    assert r.headers["OpenStack-API-Version"] == "compute 2.47"
