"""Shared by the compute servers tests: requests to /compute/v2.1 at a microversion,
and Tempest's own response validation (tempest.lib's schemas, picked per microversion
exactly as its ServersClient picks them, checked by RestClient.validate_response)."""

from __future__ import annotations

from typing import Any

import httpx
from tempest.lib.common import api_version_request
from tempest.lib.common.rest_client import RestClient
from tempest.lib.services.compute.servers_client import ServersClient

from tests.api.conftest import Caller

C = "/compute/v2.1"
# every microversion the views are checked at (the brief's, and each schema change)
VERSIONS = ["2.1", "2.3", "2.9", "2.16", "2.19", "2.26", "2.47", "2.54", "2.57", "2.58",
            "2.62", "2.63", "2.71", "2.73", "2.75", "2.79"]


def h(who: Caller, version: str | None = None, legacy: bool = False) -> dict[str, str]:
    """A caller's headers; the microversion in the header OSC sends, or Tempest's."""
    out = dict(who.h)
    if version is not None:
        if legacy:
            out["X-OpenStack-Nova-API-Version"] = version
        else:
            out["OpenStack-API-Version"] = f"compute {version}"
    return out


def schemas(version: str | None) -> Any:
    """The servers schema module Tempest's ServersClient uses at `version`."""
    want = api_version_request.APIVersionRequest(version)
    for item in ServersClient.schema_versions_info:
        lo = api_version_request.APIVersionRequest(item["min"])
        hi = api_version_request.APIVersionRequest(item["max"])
        if want.is_null() and item["min"] is None:
            return item["schema"]
        if want.matches(lo, hi):
            return item["schema"]
    raise AssertionError(f"no tempest schema for {version}")


class _Resp(dict[str, str]):
    status: int


def validate(schema: dict[str, Any], r: httpx.Response) -> Any:
    """Tempest's check of a response: the status code, then the body against the
    schema (or: no body where the schema has none)."""
    resp = _Resp({k.lower(): v for k, v in r.headers.items()})
    resp.status = r.status_code
    body = r.json() if r.content else ""
    RestClient.validate_response(schema, resp, body)
    return body


async def post_action(api: httpx.AsyncClient, who: Caller, server_id: str, body: Any,
                      version: str | None = None) -> httpx.Response:
    return await api.post(f"{C}/servers/{server_id}/action", headers=h(who, version),
                          json=body)
