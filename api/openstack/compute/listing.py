"""What the compute facade's non-server resources share: Nova's links, timestamps,
limit/marker paging, and request bodies checked into 400s (Nova's validation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import BadRequest

PREFIX = "/v2.1"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def base(request: Request) -> str:
    """The compute endpoint (http://host/compute/) the request came in on: the mount's
    path is the scope's root_path (base_url leaves it out)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}/"


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    """Nova's self (versioned) and bookmark (unversioned) links of one item."""
    root = base(request)
    return [{"rel": "self", "href": f"{root}v2.1/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{root}{collection}/{item_id}"}]


def nova_time(dt: datetime | None) -> str | None:
    """Nova's timestamps: ISO 8601 without a zone, microseconds always (UTC)."""
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


def int_param(request: Request, name: str, minimum: int = 0) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {value}. "
                         f"'{value}' is not an integer") from None
    if n < minimum:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {value}. "
                         f"{value} is less than the minimum of {minimum}")
    return n


def page(request: Request, items: Sequence[T], key: Callable[[T], str], collection: str,
         ) -> tuple[list[T], list[dict[str, str]] | None]:
    """(the page after `marker`, at most `limit` long; the next link when it is full).
    An unknown marker is a 400, as Nova's."""
    limit = int_param(request, "limit")
    marker = request.query_params.get("marker")
    start = 0
    if marker is not None:
        ids = [key(i) for i in items]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        start = ids.index(marker) + 1
    rest = list(items[start:])
    if limit is None or len(rest) <= limit:
        return rest, None
    chosen = rest[:limit]
    query = {k: v for k, v in request.query_params.items() if k != "marker"}
    query["marker"] = key(chosen[-1])
    href = f"{base(request)}v2.1/{collection}?{urlencode(query)}"
    return chosen, [{"rel": "next", "href": href}]


def checked(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 400 naming what is wrong (nothing changed yet)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise BadRequest("Invalid input for field/attribute. " + "; ".join(parts)) from None
