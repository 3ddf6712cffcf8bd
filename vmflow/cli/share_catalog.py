"""`vmflow share snapshot-*|type-*|quota-*`: share snapshots, types and quotas.

The commands of `vmflow share` that are not about one share's lifecycle."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    WaitOpt,
    calls,
    col,
    emit,
    follow,
    kv_table,
    list_table,
    out,
    parse_properties,
    seg,
)
from vmflow.cli.shares import SNAPSHOT_COLUMNS, ShareArg, share_app, share_id, snapshot_id

SnapshotArg = Annotated[str, typer.Argument(metavar="SNAPSHOT", help="Id or unique name.")]
TypeArg = Annotated[str, typer.Argument(metavar="TYPE", help="Share type id or name.")]
TYPE_COLUMNS: list[Column] = [("ID", col("id")), ("Name", col("name")),
                              ("Public", col("is_public")), ("Extra specs", col("extra_specs"))]


@share_app.command("snapshot-create")
@calls("POST /v1/share-snapshots")
def share_snapshot_create(share: ShareArg, name: str, wait: WaitOpt = False,
                          as_json: JsonOpt = False) -> None:
    """A read-only snapshot of a share."""
    api = Api()
    resp = api.call("POST", "/v1/share-snapshots",
                    json={"share_id": share_id(api, share), "name": name})
    snap = resp["snapshot"]
    follow(api, resp["operation"], f"snapshot {snap['id']}", wait, as_json)


@share_app.command("snapshot-list")
@calls("GET /v1/share-snapshots")
def share_snapshot_list(as_json: JsonOpt = False) -> None:
    """List share snapshots."""
    snaps = Api().items("/v1/share-snapshots", "snapshots")
    emit(snaps, as_json, lambda: list_table(snaps, SNAPSHOT_COLUMNS))


@share_app.command("snapshot-show")
@calls("GET /v1/share-snapshots/{snapshot_id}")
def share_snapshot_show(snapshot: SnapshotArg, as_json: JsonOpt = False) -> None:
    """Show one share snapshot."""
    api = Api()
    data = api.get(f"/v1/share-snapshots/{snapshot_id(api, snapshot)}")
    emit(data, as_json, lambda: kv_table(data))


@share_app.command("snapshot-delete")
@calls("DELETE /v1/share-snapshots/{snapshot_id}")
def share_snapshot_delete(snapshot: SnapshotArg, wait: WaitOpt = False,
                          as_json: JsonOpt = False) -> None:
    """Delete a share snapshot."""
    api = Api()
    snap = snapshot_id(api, snapshot)
    op = api.call("DELETE", f"/v1/share-snapshots/{snap}")["operation"]
    follow(api, op, f"delete snapshot {snap}", wait, as_json)


@share_app.command("type-list")
@calls("GET /v1/share-types")
def share_type_list(as_json: JsonOpt = False) -> None:
    """List share types."""
    types = Api().items("/v1/share-types", "share_types")
    emit(types, as_json, lambda: list_table(types, TYPE_COLUMNS))


@share_app.command("type-show")
@calls("GET /v1/share-types/{type_ref}")
def share_type_show(share_type: TypeArg, as_json: JsonOpt = False) -> None:
    """Show one share type."""
    data = Api().get(f"/v1/share-types/{seg(share_type)}")
    emit(data, as_json, lambda: kv_table(data))


@share_app.command("type-create")
@calls("POST /v1/share-types")
def share_type_create(
    name: str,
    spec: Annotated[list[str] | None, typer.Option(
        "--extra-spec", metavar="KEY=VALUE", help="e.g. snapshot_support=True; repeatable.")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Not listed for "
                                          "non-admins.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Admin: create a share type."""
    body = {"name": name, "extra_specs": parse_properties(spec or []), "is_public": not private}
    data = Api().call("POST", "/v1/share-types", json=body)
    emit(data, as_json, lambda: kv_table(data))


@share_app.command("type-delete")
@calls("GET /v1/share-types/{type_ref}", "DELETE /v1/share-types/{type_id}")
def share_type_delete(share_type: TypeArg) -> None:
    """Admin: delete a share type no share uses."""
    api = Api()
    type_id = api.get(f"/v1/share-types/{seg(share_type)}")["id"]
    api.call("DELETE", f"/v1/share-types/{seg(type_id)}")
    out().print(f"deleted share type {escape(share_type)}")


QUOTA_COLUMNS: list[Column] = [("Resource", col("resource")), ("Limit", col("limit")),
                               ("In use", col("in_use")), ("Reserved", col("reserved"))]


def show_quotas(data: dict[str, object], as_json: bool) -> None:
    quota = data["quota_set"]
    assert isinstance(quota, dict)
    rows = [{"resource": k, **v} for k, v in quota.items() if isinstance(v, dict)]
    emit(data, as_json, lambda: list_table(rows, QUOTA_COLUMNS))


@share_app.command("quota-show")
@calls("GET /v1/quota-sets", "GET /v1/quota-sets/{project_id}")
def share_quota_show(
    project: Annotated[str | None, typer.Argument(
        metavar="[PROJECT]", help="Project id (default: the token's project).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Share quotas of a project: limit, in use, and reserved by extends in flight."""
    show_quotas(Api().get(f"/v1/quota-sets/{seg(project)}" if project else "/v1/quota-sets"),
                as_json)


Limit = Annotated[int | None, typer.Option(min=-1, help="-1: unlimited.")]


@share_app.command("quota-set")
@calls("PUT /v1/quota-sets/{project_id}")
def share_quota_set(
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="Project id.")],
    shares: Limit = None, gigabytes: Limit = None, snapshots: Limit = None,
    snapshot_gigabytes: Limit = None, as_json: JsonOpt = False,
) -> None:
    """Admin: change a project's share quotas (only the limits given)."""
    body = {k: v for k, v in {"shares": shares, "gigabytes": gigabytes, "snapshots": snapshots,
                              "snapshot_gigabytes": snapshot_gigabytes}.items()
            if v is not None}
    if not body:
        raise typer.BadParameter("give at least one limit", param_hint="--shares/--gigabytes")
    show_quotas(Api().call("PUT", f"/v1/quota-sets/{seg(project)}", json=body), as_json)
