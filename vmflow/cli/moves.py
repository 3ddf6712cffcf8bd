"""`vmflow server resize|resize-confirm|resize-revert|migrate`: moving a server to
another flavor or host (a cold move: the guest is stopped, its disks copied, started
there) and ending the move with confirm or revert."""

from __future__ import annotations

from typing import Annotated

import typer

from vmflow.cli.common import JsonOpt, ServerArg, WaitOpt, calls
from vmflow.cli.servers import run_workflow_action, server_app


@server_app.command("resize")
@calls("POST /v1/servers/{server_id}/action")
def server_resize(
    server: ServerArg,
    flavor: Annotated[str, typer.Argument(metavar="FLAVOR", help="New flavor id or name.")],
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Another flavor, on another host (or the same one with
    VMFLOW_ALLOW_RESIZE_TO_SAME_HOST): the server stops, its disks are copied, it runs
    there and waits in VERIFY_RESIZE for resize-confirm or resize-revert (confirmed by
    itself after VMFLOW_RESIZE_CONFIRM_WINDOW). A smaller root disk is refused."""
    run_workflow_action(server, {"resize": {"flavorRef": flavor}}, "resize", wait, as_json)


@server_app.command("resize-confirm")
@calls("POST /v1/servers/{server_id}/action")
def server_resize_confirm(server: ServerArg, wait: WaitOpt = False,
                          as_json: JsonOpt = False) -> None:
    """Keep the resized or migrated server: the source's copy and claim go."""
    run_workflow_action(server, {"confirmResize": None}, "confirm the resize of", wait,
                        as_json)


@server_app.command("resize-revert")
@calls("POST /v1/servers/{server_id}/action")
def server_resize_revert(server: ServerArg, wait: WaitOpt = False,
                         as_json: JsonOpt = False) -> None:
    """Go back: the destination's copy goes, the source's runs again with the old
    flavor (if it ran before)."""
    run_workflow_action(server, {"revertResize": None}, "revert the resize of", wait,
                        as_json)


@server_app.command("migrate")
@calls("POST /v1/servers/{server_id}/action")
def server_migrate(
    server: ServerArg,
    host: Annotated[str | None, typer.Option(
        help="Destination host (default: the scheduler picks).")] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Cold migration (admin): a resize to the same flavor on another host; confirm or
    revert it as a resize."""
    run_workflow_action(server, {"migrate": {"host": host} if host else None}, "migrate",
                        wait, as_json)
