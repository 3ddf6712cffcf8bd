"""`vmflow`: the command line over the HTTP API (servers and their actions, keypairs,
operations, images, flavors, hosts, shares, networks, projects, users, tokens, admin
tools). It talks HTTP only and never imports temporalio; `main` still ends with
os._exit so that nothing run at interpreter exit can change the exit code.

common.py holds the client, rendering, --wait and @calls (the routes each command
declares, checked against the API by tests/api/test_cli_coverage.py); the other
modules hold the commands."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from vmflow.cli import common, interfaces, moves, share_catalog  # noqa: F401 (add commands)
from vmflow.cli.admin import admin_app
from vmflow.cli.backup_schedules import backup_schedule_app
from vmflow.cli.catalog import flavor_app, operation_app
from vmflow.cli.common import ApiError, err
from vmflow.cli.floating_ips import fip_app
from vmflow.cli.hosts import host_app
from vmflow.cli.identity import project_app, token_app, user_app
from vmflow.cli.images import image_app
from vmflow.cli.keypairs import keypair_app
from vmflow.cli.migrations import migration_app  # also adds `server live-migrate`
from vmflow.cli.networks import network_app, port_app, subnet_app
from vmflow.cli.security_groups import rule_app, sg_app
from vmflow.cli.servers import server_app
from vmflow.cli.shares import share_app

__all__ = ["app", "main", "run"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="vmflow: VMs whose every operation is a durable Temporal workflow.")
app.add_typer(server_app, name="server")
server_app.add_typer(backup_schedule_app, name="backup-schedule")
app.add_typer(keypair_app, name="keypair")
app.add_typer(operation_app, name="operation")
app.add_typer(image_app, name="image")
app.add_typer(flavor_app, name="flavor")
app.add_typer(host_app, name="host")
app.add_typer(migration_app, name="migration")
app.add_typer(share_app, name="share")
app.add_typer(network_app, name="network")
app.add_typer(subnet_app, name="subnet")
app.add_typer(port_app, name="port")
app.add_typer(sg_app, name="security-group")
app.add_typer(rule_app, name="security-group-rule")
app.add_typer(fip_app, name="floating-ip")
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(admin_app, name="admin")


@app.callback()
def root(
    url: Annotated[str | None, typer.Option(help="API URL (default: VMFLOW_API_URL or "
                                            "http://127.0.0.1:$VMFLOW_API_PORT)")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token (default: VMFLOW_TOKEN "
                                              "or $VMFLOW_HOME/admin-token)")] = None,
) -> None:
    common.state.url = url or common.state.url
    common.state.token = token or common.state.token


def run(args: list[str]) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 failure, 2 usage."""
    try:
        app(args=args, prog_name="vmflow")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except ApiError as e:
        err().print(f"[red]error: {escape(e.message)}[/red]")
        return 1
    return 0


def main() -> None:
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `vmflow server list | head`
        pass
    os._exit(code)
