"""`vmflow server add network|add port|remove port|interface list|interface show`:
a server's interface attachments (Nova's os-interface), named like the openstack
client's `server add network` and `server remove port`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    ServerArg,
    WaitOpt,
    calls,
    col,
    emit,
    follow,
    kv_table,
    list_table,
    seg,
    server_id,
)
from vmflow.cli.networks import NETWORKS, PORTS, ref_id
from vmflow.cli.servers import server_app

add_app = typer.Typer(no_args_is_help=True, help="Attach a NIC to a server.")
remove_app = typer.Typer(no_args_is_help=True, help="Detach a NIC from a server.")
interface_app = typer.Typer(no_args_is_help=True, help="A server's NICs (its ports).")
server_app.add_typer(add_app, name="add")
server_app.add_typer(remove_app, name="remove")
server_app.add_typer(interface_app, name="interface")

PortArg = Annotated[str, typer.Argument(metavar="PORT", help="Port id or name.")]


def _attach(server: str, body: dict[str, Any], wait: bool, as_json: bool) -> None:
    api = Api()
    sid = server_id(api, server)
    resp = api.call("POST", f"/v1/servers/{sid}/os-interface",
                    json={"interfaceAttachment": body})
    port = resp["interfaceAttachment"]["port_id"]
    follow(api, resp["operation"], f"attach port {port} to server {sid}", wait, as_json)


@add_app.command("network")
@calls("POST /v1/servers/{server_id}/os-interface")
def add_network(server: ServerArg,
                network: Annotated[str, typer.Argument(help="Network id or name.")],
                fixed_ip: Annotated[str | None, typer.Option(
                    "--fixed-ip", help="This address on the network.")] = None,
                wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """A new port on the network, hot-plugged into the server (live and in its
    definition); deleted again when it is removed or the server goes."""
    net = ref_id(Api(), NETWORKS, "networks", network, "network")
    body: dict[str, Any] = {"net_id": net}
    if fixed_ip:
        body["fixed_ips"] = [{"ip_address": fixed_ip}]
    _attach(server, body, wait, as_json)


@add_app.command("port")
@calls("POST /v1/servers/{server_id}/os-interface")
def add_port(server: ServerArg, port: PortArg, wait: WaitOpt = False,
             as_json: JsonOpt = False) -> None:
    """An unused port of the project, hot-plugged into the server; unbound (kept) when
    it is removed or the server goes."""
    _attach(server, {"port_id": ref_id(Api(), PORTS, "ports", port, "port")}, wait, as_json)


@remove_app.command("port")
@calls("DELETE /v1/servers/{server_id}/os-interface/{port_id}")
def remove_port(server: ServerArg, port: PortArg, wait: WaitOpt = False,
                as_json: JsonOpt = False) -> None:
    """Unplug the port's NIC; a port vmflow made for the server is deleted, a given one
    unbound."""
    api = Api()
    sid = server_id(api, server)
    pid = ref_id(api, PORTS, "ports", port, "port")
    op = api.call("DELETE", f"/v1/servers/{sid}/os-interface/{seg(pid)}")["operation"]
    follow(api, op, f"detach port {pid} from server {sid}", wait, as_json)


def _ips(row: dict[str, Any]) -> str:
    return escape(", ".join(ip["ip_address"] for ip in row.get("fixed_ips") or []))


@interface_app.command("list")
@calls("GET /v1/servers/{server_id}/os-interface")
def interface_list(server: ServerArg, as_json: JsonOpt = False) -> None:
    """The server's ports: id, network, MAC, state, addresses."""
    api = Api()
    rows = api.items(f"/v1/servers/{server_id(api, server)}/os-interface",
                     "interfaceAttachments")
    columns: list[Column] = [("Port", col("port_id")), ("Network", col("net_id")),
                             ("MAC", col("mac_addr")), ("State", col("port_state")),
                             ("IP addresses", _ips)]
    emit(rows, as_json, lambda: list_table(rows, columns))


@interface_app.command("show")
@calls("GET /v1/servers/{server_id}/os-interface/{port_id}")
def interface_show(server: ServerArg, port: PortArg, as_json: JsonOpt = False) -> None:
    api = Api()
    sid = server_id(api, server)
    pid = ref_id(api, PORTS, "ports", port, "port")
    row = api.get(f"/v1/servers/{sid}/os-interface/{seg(pid)}")["interfaceAttachment"]
    emit(row, as_json, lambda: kv_table(row))
