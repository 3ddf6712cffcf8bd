"""GET /servers[/detail]'s query, as nova/api/openstack/compute/servers.py reads it:
`name` a regular expression, `status` Nova's status (an unknown one matches nothing;
DELETED admins only), `image`, `flavor`, `host` (admin), `changes-since`/
`changes-before` (ISO 8601; deleted servers too), `all_tenants` (admin: every project;
`project_id`/`tenant_id` then narrow it), `limit`/`marker` paging with a `next` link;
newest first. Other keys (`deleted`, `ip`, `sort_key`, ...) are ignored, as Nova ignores
what a user may not filter by. The query itself is /v1's (servers.list_page)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from sqlmodel import Session

from api.auth import AuthContext
from api.errors import Forbidden
from api.services import servers
from vmflow.models import Instance


def _bool(value: str) -> bool:
    """Nova's is_all_tenants: present without a value, or any truthy value."""
    return value.strip().lower() not in ("0", "false", "f", "no", "n", "off")


def query(request: Request, auth: AuthContext) -> servers.ServerQuery:
    """The request's filters and paging (400 on a bad value, before any query runs)."""
    q = request.query_params
    all_tenants = "all_tenants" in q and _bool(q["all_tenants"])
    if all_tenants and not auth.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:servers:detail:"
                        "get_all_tenants to be performed.")
    project: str | None = auth.project_id
    if all_tenants:
        project = q.get("project_id") or q.get("tenant_id") or None
    return servers.ServerQuery(
        project_id=project, limit=servers.limit_of(q.get("limit")), marker=q.get("marker"),
        name=servers.name_of(q["name"]) if "name" in q else None,
        statuses=servers.statuses_of(q.getlist("status"), auth),
        host=q.get("host"),
        image_id=q["image"].rsplit("/", 1)[-1] if "image" in q else None,
        flavor_id=q["flavor"].rsplit("/", 1)[-1] if "flavor" in q else None,
        changes_since=servers.time_of("changes-since", q.get("changes-since")),
        changes_before=servers.time_of("changes-before", q.get("changes-before")),
        newest_first=True)


def page(request: Request, session: Session,
         auth: AuthContext) -> tuple[list[Instance], str | None]:
    """One page of the matching servers and the link to the next (None: the last)."""
    q = query(request, auth)
    out, _ = servers.list_page(session, auth, q)
    if not out or len(out) < q.limit:  # Nova: a full page links to the next, maybe empty
        return out, None
    params = [(k, v) for k, v in request.query_params.multi_items()
              if k not in ("marker", "limit")]
    params += [("limit", str(q.limit)), ("marker", out[-1].id)]
    url = request.url.replace(query=urlencode(params))
    return out, str(url)
