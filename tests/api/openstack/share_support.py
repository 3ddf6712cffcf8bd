"""What the share facade's tests share: headers, URLs under both layouts, rows."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from tests.api.conftest import Caller, session
from vmflow.models import Operation

LATEST = "2.80"


def h(who: Caller, version: str | None = LATEST) -> dict[str, str]:
    headers = {"X-Auth-Token": who.token}
    if version is not None:
        headers["X-OpenStack-Manila-API-Version"] = version
    return headers


def url(who: Caller, path: str, project: bool = True) -> str:
    """/share/v2/{project}/path (the catalog's layout) or /share/v2/path (2.60+)."""
    return f"/share/v2/{who.project_id}{path}" if project else f"/share/v2{path}"


def running_ops(resource_id: str) -> list[Operation]:
    with session() as s:
        return list(s.exec(select(Operation).where(Operation.resource_id == resource_id,
                                                   Operation.status == "running")))


def fault(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((name, inner),) = body.items()
    return name, inner
