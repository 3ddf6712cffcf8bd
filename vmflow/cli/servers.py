"""`vmflow server ...`: launch, list, show, delete, the instance actions of
`POST /v1/servers/{id}/action`, and server metadata."""

from __future__ import annotations

import base64
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    ServerArg,
    WaitOpt,
    calls,
    col,
    emit,
    fmt,
    fmt_addresses,
    follow,
    follow_create,
    kv_table,
    list_table,
    out,
    parse_properties,
    seg,
    server_id,
    styled,
    unwrap,
)
from vmflow.cli.networks import server_nics

server_app = typer.Typer(no_args_is_help=True, help="Servers (instances).")

SERVER_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Name", col("name")), ("Status", col("status", styled)),
    ("Task", col("task_state")), ("Host", col("host")),
    ("Networks", lambda r: escape(fmt_addresses(r.get("addresses")))),
]


# ---- create, list, show, delete, history ----------------------------------------------


@server_app.command("create")
@calls("POST /v1/servers")
def server_create(
    name: str,
    image: Annotated[str, typer.Option(help="Image id or name.")],
    flavor: Annotated[str, typer.Option(help="Flavor id or name.")],
    key_name: Annotated[str | None, typer.Option(help="Keypair name.")] = None,
    prop: Annotated[list[str] | None, typer.Option(
        "--property", metavar="KEY=VALUE", help="Metadata; repeatable.")] = None,
    user_data: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="File passed to the guest (sent base64, as Nova).")
    ] = None,
    network: Annotated[list[str] | None, typer.Option(
        help="Network id or name, or auto | none; repeatable (a NIC each).")] = None,
    port: Annotated[list[str] | None, typer.Option(
        help="An existing port (id or name) as a NIC; repeatable.")] = None,
    security_group: Annotated[list[str] | None, typer.Option(
        help="Security group name for the new ports; repeatable (default: default).")
    ] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Launch a server."""
    api = Api()
    body: dict[str, Any] = {"name": name, "image": image, "flavor": flavor,
                            **server_nics(api, network, port, security_group)}
    if key_name:
        body["key_name"] = key_name
    if prop:
        body["metadata"] = parse_properties(prop)
    if user_data:
        body["user_data"] = base64.b64encode(user_data.read_bytes()).decode()
    resp = api.call("POST", "/v1/servers", json=body)
    server, op = resp["server"], resp["operation"]
    if not wait:
        emit(resp, as_json, lambda: kv_table(server))
        if not as_json:
            out().print(f"operation {op['id']} ({op['workflow_id']}): {styled(op['status'])}")
        return
    follow_create(api, op, f"/v1/servers/{server['id']}", "server", server, as_json)


@server_app.command("list")
@calls("GET /v1/servers")
def server_list(as_json: JsonOpt = False) -> None:
    """List servers."""
    servers = Api().items("/v1/servers", "servers")
    emit(servers, as_json, lambda: list_table(servers, SERVER_COLUMNS))


@server_app.command("show")
@calls("GET /v1/servers/{server_id}")
def server_show(server: ServerArg, as_json: JsonOpt = False) -> None:
    """Show one server."""
    api = Api()
    data = api.get(f"/v1/servers/{server_id(api, server)}")
    emit(data, as_json, lambda: kv_table(data))


@server_app.command("delete")
@calls("DELETE /v1/servers/{server_id}")
def server_delete(server: ServerArg, wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Delete a server (cancels a running operation on it first)."""
    api = Api()
    sid = server_id(api, server)
    op = api.call("DELETE", f"/v1/servers/{sid}")["operation"]
    follow(api, op, f"delete server {sid}", wait, as_json)


@server_app.command("actions")
@calls("GET /v1/servers/{server_id}/actions")
def server_actions(server: ServerArg, as_json: JsonOpt = False) -> None:
    """A server's action history (like Nova's instance actions)."""
    api = Api()
    actions = api.items(f"/v1/servers/{server_id(api, server)}/actions", "actions")
    columns: list[Column] = [
        ("Action", col("action")), ("Result", col("result", styled)), ("Start", col("start")),
        ("Finish", col("finish")), ("User", lambda r: escape(fmt(r.get("user") or
                                                                 r.get("user_id")))),
        ("Operation", col("operation_id")), ("Fault", col("fault")),
    ]
    emit(actions, as_json, lambda: list_table(actions, columns))


# ---- instance actions -----------------------------------------------------------------


def server_action(api: Api, ref: str, body: dict[str, Any]) -> tuple[str, Any]:
    """POST one action (`{nova-name: args}`) to the server `ref`; its id and the answer."""
    sid = server_id(api, ref)
    return sid, api.call("POST", f"/v1/servers/{sid}/action", json=body)


def run_workflow_action(ref: str, body: dict[str, Any], verb: str, wait: bool,
                        as_json: bool) -> None:
    """An action the API runs as a workflow: 202 with the operation to follow."""
    api = Api()
    sid, resp = server_action(api, ref, body)
    follow(api, resp["operation"], f"{verb} server {sid}", wait, as_json)


# verb -> (the action's key in the API body, help); each takes no arguments
SIMPLE_ACTIONS = {
    "start": ("os-start", "Power a stopped server on and wait for its agent."),
    "stop": ("os-stop", "Shut down cleanly (agent, then ACPI); power off after a timeout."),
    "pause": ("pause", "Pause the vCPUs; memory stays in RAM."),
    "unpause": ("unpause", "Run a paused server's vCPUs again."),
    "suspend": ("suspend", "Save the memory to disk (managed save) and stop."),
    "resume": ("resume", "Restore a suspended server from its managed save."),
    "unrescue": ("unrescue", "Leave rescue mode: boot the original disk again."),
    "force-delete": ("forceDelete", "Delete now: end any running operation first, "
                                    "no compensation."),
    "shelve": ("shelve", "Stop cleanly and snapshot the disk to <name>-shelved; offloaded "
                         "from its host per VMFLOW_SHELVED_OFFLOAD_TIME."),
    "shelve-offload": ("shelveOffload", "Admin: a shelved server leaves its host (domain, "
                                        "disks and claim go; the shelve image stays)."),
}


def simple_action(verb: str, key: str) -> Callable[..., None]:
    def command(server: ServerArg, wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
        run_workflow_action(server, {key: None}, verb, wait, as_json)
    return command


for _verb, (_key, _help) in SIMPLE_ACTIONS.items():
    server_app.command(_verb, help=_help)(
        calls("POST /v1/servers/{server_id}/action")(simple_action(_verb, _key)))


@server_app.command("reboot")
@calls("POST /v1/servers/{server_id}/action")
def server_reboot(
    server: ServerArg,
    hard: Annotated[bool, typer.Option("--hard", help="Power off and on at once instead "
                                       "of a clean restart.")] = False,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Reboot: clean restart (becomes hard after a timeout), or --hard."""
    body = {"reboot": {"type": "HARD" if hard else "SOFT"}}
    run_workflow_action(server, body, "hard reboot" if hard else "reboot", wait, as_json)


@server_app.command("rescue")
@calls("POST /v1/servers/{server_id}/action")
def server_rescue(
    server: ServerArg,
    image: Annotated[str | None, typer.Option(
        help="Rescue image id or name (default: the server's own image).")] = None,
    unrescue_after: Annotated[int | None, typer.Option(
        "--unrescue-after", min=1, help="Leave rescue mode by itself this many seconds "
        "after the rescue (unless unrescued, locked or rescued again by then).")] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Boot a rescue image with the server's disk attached second."""
    args: dict[str, object] = {}
    if image:
        args["rescue_image_ref"] = image
    if unrescue_after is not None:
        args["unrescue_after"] = unrescue_after
    run_workflow_action(server, {"rescue": args}, "rescue", wait, as_json)


@server_app.command("unshelve")
@calls("POST /v1/servers/{server_id}/action")
def server_unshelve(
    server: ServerArg,
    host: Annotated[str | None, typer.Option(
        help="Admin: spawn an offloaded server on this host.")] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a shelved server again: power it on, or spawn an offloaded one from its
    shelve image on a host with room (the image is deleted once it runs)."""
    run_workflow_action(server, {"unshelve": {"host": host} if host else None}, "unshelve",
                        wait, as_json)


@server_app.command("rebuild")
@calls("POST /v1/servers/{server_id}/action")
def server_rebuild(
    server: ServerArg,
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="New image id or name.")],
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """A fresh root disk from IMAGE; id, name, flavor and addresses stay. The old disk
    is deleted once the new one has booted, and comes back if it never does."""
    run_workflow_action(server, {"rebuild": {"imageRef": image}}, "rebuild", wait, as_json)


@server_app.command("evacuate")
@calls("POST /v1/servers/{server_id}/action")
def server_evacuate(
    server: ServerArg,
    host: Annotated[str | None, typer.Option(
        help="Rebuild it on this host (default: the scheduler picks).")] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Admin: the server's host is down (or forced down); rebuild the server from its
    image on another host: same id, name, flavor and metadata, a fresh disk."""
    run_workflow_action(server, {"evacuate": {"host": host} if host else None}, "evacuate",
                        wait, as_json)


@server_app.command("image-create")
@calls("POST /v1/servers/{server_id}/action")
def server_image_create(
    server: ServerArg,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the new image.")],
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """createImage: a snapshot of the root disk, frozen through the guest agent around
    the point-in-time copy (the image records quiesced or crash-consistent)."""
    run_workflow_action(server, {"createImage": {"name": name}}, "snapshot", wait, as_json)


@server_app.command("backup")
@calls("POST /v1/servers/{server_id}/action")
def server_backup(
    server: ServerArg,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the backup image.")],
    backup_type: Annotated[str, typer.Option("--type", help="e.g. daily, weekly.")],
    rotation: Annotated[int, typer.Option(help="Keep this many backups of that type.")],
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """createBackup: a snapshot typed as backup; older ones beyond --rotation go."""
    body = {"createBackup": {"name": name, "backup_type": backup_type, "rotation": rotation}}
    run_workflow_action(server, body, "backup", wait, as_json)


def show_server_answer(resp: Any, as_json: bool) -> None:
    """lock, unlock and reset-state answer 200 with the server itself."""
    server = unwrap(resp, "server")
    emit(resp, as_json, lambda: kv_table(server) if isinstance(server, dict) else fmt(server))


@server_app.command("lock")
@calls("POST /v1/servers/{server_id}/action")
def server_lock(
    server: ServerArg,
    reason: Annotated[str | None, typer.Option(help="Why (shown to others).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Lock: mutating actions from non-admins are refused until unlocked."""
    api = Api()
    _, resp = server_action(api, server, {"lock": {"locked_reason": reason} if reason
                                          else None})
    show_server_answer(resp, as_json)


@server_app.command("unlock")
@calls("POST /v1/servers/{server_id}/action")
def server_unlock(server: ServerArg, as_json: JsonOpt = False) -> None:
    """Lift a lock (whoever locked it, or an admin)."""
    api = Api()
    _, resp = server_action(api, server, {"unlock": None})
    show_server_answer(resp, as_json)


class ResetState(StrEnum):
    active = "active"
    error = "error"


@server_app.command("reset-state")
@calls("POST /v1/servers/{server_id}/action")
def server_reset_state(
    server: ServerArg,
    to: Annotated[ResetState, typer.Option("--state", help="The vm_state to set.")],
    as_json: JsonOpt = False,
) -> None:
    """Admin: set vm_state to active or error and clear task_state (audited)."""
    api = Api()
    _, resp = server_action(api, server, {"os-resetState": {"state": to.value}})
    show_server_answer(resp, as_json)


# ---- metadata -------------------------------------------------------------------------


def metadata_table(meta: dict[str, Any]) -> Table | str:
    if not meta:
        return "no metadata"
    rows = [{"key": k, "value": v} for k, v in sorted(meta.items())]
    return list_table(rows, [("Key", col("key")), ("Value", col("value"))])


def show_metadata(resp: Any, as_json: bool) -> None:
    meta = resp.get("metadata", {}) if isinstance(resp, dict) else {}
    emit(resp, as_json, lambda: metadata_table(meta))


PropertyOpt = Annotated[list[str], typer.Option("--property", metavar="KEY=VALUE",
                                                help="Repeatable.")]


@server_app.command("set")
@calls("POST /v1/servers/{server_id}/metadata", "PUT /v1/servers/{server_id}/metadata")
def server_set(
    server: ServerArg,
    prop: PropertyOpt,
    replace: Annotated[bool, typer.Option("--replace", help="These keys become all the "
                                          "metadata (the others are removed).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set metadata keys (merged into what is there, or --replace)."""
    meta = parse_properties(prop)
    api = Api()
    sid = server_id(api, server)
    show_metadata(api.call("PUT" if replace else "POST", f"/v1/servers/{sid}/metadata",
                           json={"metadata": meta}), as_json)


@server_app.command("unset")
@calls("DELETE /v1/servers/{server_id}/metadata/{key}")
def server_unset(
    server: ServerArg,
    keys: Annotated[list[str], typer.Option("--property", metavar="KEY", help="Repeatable.")],
) -> None:
    """Delete metadata keys."""
    api = Api()
    sid = server_id(api, server)
    for key in keys:
        api.call("DELETE", f"/v1/servers/{sid}/metadata/{seg(key)}")
    out().print(f"server {sid}: removed {escape(', '.join(keys))}")


@server_app.command("metadata")
@calls("GET /v1/servers/{server_id}/metadata", "GET /v1/servers/{server_id}/metadata/{key}")
def server_metadata(
    server: ServerArg,
    key: Annotated[str | None, typer.Argument(metavar="[KEY]", help="Only this key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a server's metadata (or one key of it)."""
    api = Api()
    sid = server_id(api, server)
    if key is None:
        show_metadata(api.get(f"/v1/servers/{sid}/metadata"), as_json)
        return
    data = api.get(f"/v1/servers/{sid}/metadata/{seg(key)}")
    emit(data, as_json, lambda: metadata_table(data.get("meta", {})))
