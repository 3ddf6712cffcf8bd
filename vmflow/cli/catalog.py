"""`vmflow operation|image|flavor|host ...`: what the API shows about operations and
the catalog."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    col,
    emit,
    fmt_size,
    image_id,
    kv_table,
    list_table,
    out,
    styled,
)
from vmflow.settings import get_settings

operation_app = typer.Typer(no_args_is_help=True, help="Operations (workflow runs).")
image_app = typer.Typer(no_args_is_help=True, help="Images.")
flavor_app = typer.Typer(no_args_is_help=True, help="Flavors.")
host_app = typer.Typer(no_args_is_help=True, help="Hypervisor hosts (admin).")

# "why is it stuck?": where it is, how far, which try, what last went wrong, and the
# workflow to look at; shown in this order even when the API leaves a field out
OPERATION_FIELDS = ("id", "action", "resource_type", "resource_id", "status", "step",
                    "progress", "attempt", "last_error", "workflow_id", "run_id",
                    "started_at", "finished_at")


def operation_view(op: dict[str, Any]) -> dict[str, Any]:
    view = {key: op.get(key) for key in OPERATION_FIELDS}
    if view["progress"] is not None:
        view["progress"] = f"{view['progress']}%"
    view.update({k: v for k, v in op.items() if k not in view})
    return view


def temporal_hint(workflow_id: str, run_id: str | None) -> str:
    """The operator's next step: the workflow's own history in Temporal. The run id
    matters: later operations on the same instance reuse its workflow id."""
    cmd = ["temporal", "workflow", "show", "-w", workflow_id]
    if run_id:
        cmd += ["-r", run_id]
    namespace = get_settings().temporal_namespace
    if namespace != "default":
        cmd += ["--namespace", namespace]
    return shlex.join(cmd)


@operation_app.command("show")
def operation_show(operation_id: Annotated[str, typer.Argument(metavar="ID")],
                   as_json: JsonOpt = False) -> None:
    """Show an operation: status, step, progress, attempt, last error, workflow."""
    data = Api().get(f"/v1/operations/{operation_id}")
    emit(data, as_json, lambda: kv_table(operation_view(data)))
    if not as_json and data.get("workflow_id"):
        hint = temporal_hint(data["workflow_id"], data.get("run_id"))
        out().print(f"[dim]workflow history: {escape(hint)}[/dim]")


@image_app.command("list")
def image_list(as_json: JsonOpt = False) -> None:
    """List images."""
    images = Api().items("/v1/images", "images")
    columns: list[Column] = [
        ("ID", col("id")), ("Name", col("name")), ("Status", col("status", styled)),
        ("Format", col("disk_format")), ("Size", col("size", fmt_size)),
        ("Visibility", col("visibility")),
    ]
    emit(images, as_json, lambda: list_table(images, columns))


@image_app.command("show")
def image_show(image: Annotated[str, typer.Argument(metavar="ID_OR_NAME")],
               as_json: JsonOpt = False) -> None:
    """Show one image."""
    api = Api()
    data = api.get(f"/v1/images/{image_id(api, image)}")
    emit(data, as_json, lambda: kv_table(data))


@flavor_app.command("list")
def flavor_list(as_json: JsonOpt = False) -> None:
    """List flavors."""
    flavors = Api().items("/v1/flavors", "flavors")
    columns: list[Column] = [
        ("ID", col("id")), ("Name", col("name")), ("vCPUs", col("vcpus")),
        ("RAM (MiB)", col("ram")), ("Disk (GB)", col("disk")), ("Public", col("is_public")),
        ("Extra specs", col("extra_specs")),
    ]
    emit(flavors, as_json, lambda: list_table(flavors, columns))


def used_of(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda h: f"{(h.get('used') or {}).get(key, '-')} / {h.get(key, '-')}"


@host_app.command("list")
def host_list(as_json: JsonOpt = False) -> None:
    """List hypervisor hosts with capacity, usage and liveness."""
    hosts = Api().items("/v1/hosts", "hosts")
    columns: list[Column] = [
        ("Name", col("name")), ("Hostname", col("hostname")),
        ("Alive", lambda h: "[green]yes[/green]" if h.get("alive") else "[red]no[/red]"),
        ("Virt", col("virt_type")), ("vCPUs used", used_of("vcpus")),
        ("RAM MiB used", used_of("ram_mb")), ("Disk GB used", used_of("disk_gb")),
        ("Instances", col("instances")), ("Traits", col("traits")),
    ]
    emit(hosts, as_json, lambda: list_table(hosts, columns))
