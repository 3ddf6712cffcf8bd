"""`vmflow host list|show|set`: hypervisor hosts (admin), their capacity and usage,
whether they are up, and Nova's service state (enabled/disabled with a reason,
forced down) that keeps the scheduler off them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    calls,
    col,
    emit,
    kv_table,
    list_table,
    seg,
)

host_app = typer.Typer(no_args_is_help=True, help="Hypervisor hosts (admin).")
NameArg = Annotated[str, typer.Argument(metavar="NAME")]


def used_of(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda h: f"{(h.get('used') or {}).get(key, '-')} / {h.get(key, '-')}"


def state_of(h: dict[str, Any]) -> str:
    up = h.get("state", "up" if h.get("alive") else "down")
    text = "[green]up[/green]" if up == "up" else "[red]down[/red]"
    return text + (" (forced)" if h.get("forced_down") else "")


def status_of(h: dict[str, Any]) -> str:
    if h.get("status", "enabled") == "enabled":
        return "enabled"
    reason = h.get("disabled_reason")
    return "[yellow]disabled[/yellow]" + (f": {escape(reason)}" if reason else "")


@host_app.command("list")
@calls("GET /v1/hosts")
def host_list(as_json: JsonOpt = False) -> None:
    """List hypervisor hosts with their state, capacity and usage."""
    hosts = Api().items("/v1/hosts", "hosts")
    columns: list[Column] = [
        ("Name", col("name")), ("Hostname", col("hostname")), ("State", state_of),
        ("Status", status_of), ("Virt", col("virt_type")), ("vCPUs used", used_of("vcpus")),
        ("RAM MiB used", used_of("ram_mb")), ("Disk GB used", used_of("disk_gb")),
        ("Instances", col("instances")), ("Traits", col("traits")),
    ]
    emit(hosts, as_json, lambda: list_table(hosts, columns))


@host_app.command("show")
@calls("GET /v1/hosts/{name}")
def host_show(name: NameArg, as_json: JsonOpt = False) -> None:
    """One host: state, status, capacity, usage, traits, libvirt URI, last heartbeat."""
    data = Api().get(f"/v1/hosts/{seg(name)}")
    emit(data, as_json, lambda: kv_table(data))


@host_app.command("set")
@calls("PUT /v1/hosts/{name}")
def host_set(
    name: NameArg,
    enable: Annotated[bool | None, typer.Option(
        "--enable/--disable", help="Let the scheduler place guests here, or not.")] = None,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why it is disabled (only with --disable).")] = None,
    force_down: Annotated[bool | None, typer.Option(
        "--force-down/--no-force-down",
        help="Mark it down whatever its heartbeat says (e.g. fenced, for evacuation).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Admin: enable or disable a host (nova service-disable --reason) and force it
    down or not (nova service-force-down); its guests keep running either way."""
    if enable is None and force_down is None:
        raise typer.BadParameter(
            "say what to change: --enable, --disable, --force-down or --no-force-down")
    if reason is not None and enable is not False:
        raise typer.BadParameter("--reason goes with --disable", param_hint="--reason")
    body: dict[str, Any] = {}
    if enable is not None:
        body["status"] = "enabled" if enable else "disabled"
    if reason is not None:
        body["disabled_reason"] = reason
    if force_down is not None:
        body["forced_down"] = force_down
    data = Api().call("PUT", f"/v1/hosts/{seg(name)}", json=body)
    emit(data, as_json, lambda: kv_table(data))
