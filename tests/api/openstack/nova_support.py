"""Nova contract checks for the compute facade's tests: a caller's headers at a
microversion, and a response checked against a Tempest response schema (status code,
and the body, or no body where Nova sends none)."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

from tests.api.conftest import Caller

C = "/compute/v2.1"


def nova(who: Caller, version: str = "2.1") -> dict[str, str]:
    """Tempest's way: X-Auth-Token and only the legacy microversion header."""
    return {"X-Auth-Token": who.token, "X-OpenStack-Nova-API-Version": version}


def schema(module: str, name: str) -> dict[str, Any]:
    """tempest.lib.api_schema.response.compute.<module>.<name>, e.g. ("v2_61.flavors",
    "list_flavors_details")."""
    mod = importlib.import_module(f"tempest.lib.api_schema.response.compute.{module}")
    found: dict[str, Any] = getattr(mod, name)
    return found


def check(r: httpx.Response, module: str, name: str) -> Any:
    """The response matches the schema (as Tempest's rest client validates it); the body."""
    s = schema(module, name)
    assert r.status_code in s["status_code"], (r.status_code, r.text)
    if "response_body" in s:
        body = r.json()
        JSONSCHEMA_VALIDATOR(s["response_body"], format_checker=FORMAT_CHECKER).validate(body)
        return body
    assert not r.content, r.text
    return None


def fault(r: httpx.Response, code: int) -> dict[str, Any]:
    """A Nova error body with this status: {"<name>": {"code": code, "message": ...}}."""
    assert r.status_code == code, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    (inner,) = body.values()
    assert inner["code"] == code and inner["message"], body
    return body
