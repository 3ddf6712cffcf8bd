"""`vmflow server live-migrate` and `vmflow migration list|show|abort|force-complete`
(admin): Nova's os-migrateLive, server migrations and os-migrations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    ServerArg,
    WaitOpt,
    calls,
    col,
    emit,
    kv_table,
    list_table,
    seg,
    server_id,
)
from vmflow.cli.servers import run_workflow_action, server_app

migration_app = typer.Typer(no_args_is_help=True,
                            help="Migrations of servers between hosts (admin).")
MigrationArg = Annotated[int, typer.Argument(metavar="MIGRATION", help="Migration id.")]
COLUMNS: list[Column] = [
    ("Id", col("id")), ("Server", col("server_uuid")), ("Type", col("migration_type")),
    ("Status", col("status")), ("Source", col("source_compute")),
    ("Destination", col("dest_compute")), ("Progress %", col("progress")),
    ("Created", col("created_at")), ("Updated", col("updated_at")),
]


@server_app.command("live-migrate")
@calls("POST /v1/servers/{server_id}/action")
def server_live_migrate(
    server: ServerArg,
    host: Annotated[str | None, typer.Option(
        "--host", help="Destination host (default: the scheduler picks one).")] = None,
    block_migration: Annotated[Literal["auto", "true", "false"], typer.Option(
        "--block-migration", help="Copy the disks (auto and true: vmflow hosts never "
                                  "share instance storage; false is refused).")] = "auto",
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Admin: move the running server and its disk to another host without stopping it."""
    block: bool | str = "auto" if block_migration == "auto" else block_migration == "true"
    run_workflow_action(server, {"os-migrateLive": {"host": host, "block_migration": block}},
                        "live-migrate", wait, as_json)


@migration_app.command("list")
@calls("GET /v1/os-migrations", "GET /v1/servers/{server_id}/migrations")
def migration_list(
    server: Annotated[str | None, typer.Option(
        "--server", help="Only this server's live migrations in progress.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Source or destination.")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    migration_type: Annotated[str | None, typer.Option(
        "--type", help="resize, migration, live-migration or evacuation.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every migration (newest first), or one server's live migrations in progress."""
    api = Api()
    if server is not None:
        rows = api.items(f"/v1/servers/{seg(server_id(api, server))}/migrations", "migrations")
    else:
        params = {k: v for k, v in (("host", host), ("status", status),
                                    ("migration_type", migration_type)) if v is not None}
        rows = api.get("/v1/os-migrations", params=params)["migrations"]
    emit(rows, as_json, lambda: list_table(rows, COLUMNS))


@migration_app.command("show")
@calls("GET /v1/servers/{server_id}/migrations/{migration_id}")
def migration_show(server: ServerArg, migration: MigrationArg, as_json: JsonOpt = False) -> None:
    """One live migration in progress, with the bytes copied so far."""
    api = Api()
    data = api.get(f"/v1/servers/{seg(server_id(api, server))}/migrations/{migration}")
    emit(data, as_json, lambda: kv_table(data))


@migration_app.command("abort")
@calls("DELETE /v1/servers/{server_id}/migrations/{migration_id}")
def migration_abort(server: ServerArg, migration: MigrationArg, as_json: JsonOpt = False) -> None:
    """Abort a live migration: the guest stays on its source; nothing is left on the
    destination."""
    api = Api()
    data: Any = api.call("DELETE",
                         f"/v1/servers/{seg(server_id(api, server))}/migrations/{migration}")
    emit(data, as_json, lambda: kv_table(data))


@migration_app.command("force-complete")
@calls("POST /v1/servers/{server_id}/migrations/{migration_id}/action")
def migration_force_complete(server: ServerArg, migration: MigrationArg,
                             as_json: JsonOpt = False) -> None:
    """Pause the guest until its live migration has converged; it runs again on the
    destination."""
    api = Api()
    data: Any = api.call(
        "POST", f"/v1/servers/{seg(server_id(api, server))}/migrations/{migration}/action",
        json={"force_complete": None})
    emit(data, as_json, lambda: kv_table(data))
