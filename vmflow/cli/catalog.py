"""`vmflow operation|flavor ...`: operations, flavors and their access.

Images are in images.py, hosts in hosts.py."""

from __future__ import annotations

import shlex
from enum import StrEnum
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
    out,
    parse_properties,
    seg,
    styled,
)
from vmflow.settings import get_settings

operation_app = typer.Typer(no_args_is_help=True, help="Operations (workflow runs).")
flavor_app = typer.Typer(no_args_is_help=True, help="Flavors.")

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
@calls("GET /v1/operations/{operation_id}")
def operation_show(operation_id: Annotated[str, typer.Argument(metavar="ID")],
                   as_json: JsonOpt = False) -> None:
    """Show an operation: status, step, progress, attempt, last error, workflow."""
    data = Api().get(f"/v1/operations/{operation_id}")
    emit(data, as_json, lambda: kv_table(operation_view(data)))
    if not as_json and data.get("workflow_id"):
        hint = temporal_hint(data["workflow_id"], data.get("run_id"))
        out().print(f"[dim]workflow history: {escape(hint)}[/dim]")


class OpStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    compensated = "compensated"


@operation_app.command("list")
@calls("GET /v1/operations")
def operation_list(
    resource: Annotated[str | None, typer.Option(
        help="Only this resource's (a server, share or image id).")] = None,
    status: Annotated[OpStatus | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Recent operations of your project (admin: all), newest first."""
    params: dict[str, Any] = {"limit": limit}
    if resource:
        params["resource_id"] = resource
    if status:
        params["status"] = status.value
    ops = Api().get("/v1/operations", params=params)["operations"]
    columns: list[Column] = [
        ("ID", col("id")), ("Action", col("action")), ("Resource", col("resource_type")),
        ("Resource ID", col("resource_id")), ("Status", col("status", styled)),
        ("Started", col("started_at")), ("Finished", col("finished_at")),
        ("Error", col("last_error")),
    ]
    emit(ops, as_json, lambda: list_table(ops, columns))


FlavorArg = Annotated[str, typer.Argument(metavar="FLAVOR", help="Flavor id or name.")]
FLAVOR_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Name", col("name")), ("vCPUs", col("vcpus")),
    ("RAM (MiB)", col("ram")), ("Disk (GB)", col("disk")), ("Public", col("is_public")),
    ("Extra specs", col("extra_specs")),
]


@flavor_app.command("list")
@calls("GET /v1/flavors")
def flavor_list(as_json: JsonOpt = False) -> None:
    """List the flavors you may use (admin: all)."""
    flavors = Api().items("/v1/flavors", "flavors")
    emit(flavors, as_json, lambda: list_table(flavors, FLAVOR_COLUMNS))


@flavor_app.command("show")
@calls("GET /v1/flavors/{flavor_ref}")
def flavor_show(flavor: FlavorArg, as_json: JsonOpt = False) -> None:
    """Show one flavor."""
    data = Api().get(f"/v1/flavors/{seg(flavor)}")
    emit(data, as_json, lambda: kv_table(data))


@flavor_app.command("create")
@calls("POST /v1/flavors")
def flavor_create(
    name: str,
    vcpus: Annotated[int, typer.Option(min=1)],
    ram: Annotated[int, typer.Option(min=1, help="MiB.")],
    disk: Annotated[int, typer.Option(min=0, help="GB.")],
    private: Annotated[bool, typer.Option("--private", help="Only admins and the projects "
                                          "given access (flavor access-add) see it.")] = False,
    prop: Annotated[list[str] | None, typer.Option(
        "--property", metavar="KEY=VALUE", help="Extra spec, e.g. trait:HW_CPU_X86_AVX2="
        "required; repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Admin: create a flavor."""
    body = {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk, "is_public": not private,
            "extra_specs": parse_properties(prop or [])}
    data = Api().call("POST", "/v1/flavors", json=body)
    emit(data, as_json, lambda: kv_table(data))


@flavor_app.command("delete")
@calls("DELETE /v1/flavors/{flavor_ref}")
def flavor_delete(flavor: FlavorArg) -> None:
    """Admin: delete a flavor no server uses."""
    Api().call("DELETE", f"/v1/flavors/{seg(flavor)}")
    out().print(f"deleted flavor {escape(flavor)}")


ACCESS_COLUMNS: list[Column] = [("Flavor", col("flavor_id")), ("Project", col("project_id"))]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="Project id or name.")]


def show_access(data: Any, as_json: bool) -> None:
    rows = data["flavor_access"]
    emit(data, as_json, lambda: list_table(rows, ACCESS_COLUMNS) if rows
         else "no project has access")


@flavor_app.command("access-add")
@calls("POST /v1/flavors/{flavor_ref}/access")
def flavor_access_add(flavor: FlavorArg, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Admin: let a project see and boot a private flavor."""
    show_access(Api().call("POST", f"/v1/flavors/{seg(flavor)}/access",
                           json={"project": project}), as_json)


@flavor_app.command("access-list")
@calls("GET /v1/flavors/{flavor_ref}/access")
def flavor_access_list(flavor: FlavorArg, as_json: JsonOpt = False) -> None:
    """Admin: the projects a private flavor is given to."""
    show_access(Api().get(f"/v1/flavors/{seg(flavor)}/access"), as_json)


@flavor_app.command("access-remove")
@calls("DELETE /v1/flavors/{flavor_ref}/access/{project}")
def flavor_access_remove(flavor: FlavorArg, project: ProjectArg) -> None:
    """Admin: take a private flavor away from a project (its servers keep running)."""
    Api().call("DELETE", f"/v1/flavors/{seg(flavor)}/access/{seg(project)}")
    out().print(f"project {escape(project)} no longer has flavor {escape(flavor)}")
