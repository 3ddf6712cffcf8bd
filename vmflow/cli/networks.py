"""`vmflow network|subnet|port ...`: create, list, show, delete, and what the network
commands share (vmflow/cli/security_groups.py, floating_ips.py). Resources are named
by id or by a unique name."""

from __future__ import annotations

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
    find_by_name,
    is_uuid,
    kv_table,
    list_table,
    out,
    seg,
)

network_app = typer.Typer(no_args_is_help=True, help="Networks (Neutron's names).")
subnet_app = typer.Typer(no_args_is_help=True, help="The IPv4 subnet of a network.")
port_app = typer.Typer(no_args_is_help=True, help="Ports: a MAC and fixed IPs on a network.")

Ref = Annotated[str, typer.Argument(metavar="ID_OR_NAME")]
NETWORKS, SUBNETS, PORTS = "/v1/networks", "/v1/subnets", "/v1/ports"
GROUPS, RULES, FIPS = "/v1/security-groups", "/v1/security-group-rules", "/v1/floating-ips"


def ref_id(api: Api, path: str, key: str, ref: str, kind: str) -> str:
    if is_uuid(ref):
        return ref
    return str(find_by_name(api.items(path, key), ref, kind)["id"])


def joined(values: Any) -> str:
    return ", ".join(str(v) for v in values or [])


def show_one(path: str, key: str, kind: str, ref: str, as_json: bool) -> None:
    api = Api()
    obj = api.get(f"{path}/{seg(ref_id(api, path, key, ref, kind))}")
    emit(obj, as_json, lambda: kv_table(obj))


def delete_one(path: str, key: str, kind: str, ref: str) -> None:
    api = Api()
    rid = ref_id(api, path, key, ref, kind)
    api.call("DELETE", f"{path}/{seg(rid)}")
    out().print(f"deleted {kind} {escape(rid)}")


def list_all(path: str, key: str, columns: list[Column], as_json: bool,
             params: dict[str, str | None] | None = None) -> None:
    data = Api().get(path, params={k: v for k, v in (params or {}).items() if v is not None})
    rows = data[key]
    emit(rows, as_json, lambda: list_table(rows, columns))


def server_nics(api: Api, networks: list[str] | None, ports: list[str] | None,
                groups: list[str] | None) -> dict[str, Any]:
    """`server create`'s --network/--port/--security-group as the launch body's
    `networks` ("auto" | "none" | [{uuid} | {port}]) and `security_groups` fields."""
    body: dict[str, Any] = {}
    nets, prts = networks or [], ports or []
    if nets in (["auto"], ["none"]) and not prts:
        body["networks"] = nets[0]
    elif nets or prts:
        if {"auto", "none"} & set(nets):
            raise typer.BadParameter("--network auto|none stands alone (no other "
                                     "--network or --port)")
        body["networks"] = (
            [{"uuid": ref_id(api, NETWORKS, "networks", n, "network")} for n in nets]
            + [{"port": ref_id(api, PORTS, "ports", p, "port")} for p in prts])
    if groups:
        body["security_groups"] = [{"name": g} for g in groups]
    return body


def created(obj: dict[str, Any], as_json: bool) -> None:
    emit(obj, as_json, lambda: kv_table(obj))


# --- networks ------------------------------------------------------------------------

@network_app.command("create")
@calls("POST /v1/networks")
def network_create(name: Annotated[str, typer.Argument(metavar="NAME")],
                   shared: Annotated[bool, typer.Option(help="Every project may use it "
                                                        "(admin).")] = False,
                   external: Annotated[bool, typer.Option(help="Floating IPs come from it "
                                                          "(admin).")] = False,
                   as_json: JsonOpt = False) -> None:
    """Create a network (add its subnet with `vmflow subnet create`)."""
    body = {"name": name, "shared": shared, "router:external": external}
    created(Api().call("POST", NETWORKS, json=body), as_json)


@network_app.command("list")
@calls("GET /v1/networks")
def network_list(as_json: JsonOpt = False) -> None:
    """List the networks the project sees (its own, shared and external ones)."""
    list_all(NETWORKS, "networks", [
        ("ID", col("id")), ("Name", col("name")), ("Subnets", col("subnets", joined)),
        ("Shared", col("shared")), ("External", col("router:external")),
        ("Status", col("status"))], as_json)


@network_app.command("show")
@calls("GET /v1/networks/{network_id}")
def network_show(ref: Ref, as_json: JsonOpt = False) -> None:
    """Show a network."""
    show_one(NETWORKS, "networks", "network", ref, as_json)


@network_app.command("delete")
@calls("DELETE /v1/networks/{network_id}")
def network_delete(ref: Ref) -> None:
    """Delete a network and its subnet (refused while it has ports)."""
    delete_one(NETWORKS, "networks", "network", ref)


# --- subnets -------------------------------------------------------------------------

def parse_pool(text: str) -> dict[str, str]:
    start, sep, end = text.partition(",")
    if not sep:
        raise typer.BadParameter(f"{text!r} is not START,END", param_hint="--pool")
    return {"start": start.strip(), "end": end.strip()}


@subnet_app.command("create")
@calls("POST /v1/subnets")
def subnet_create(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    network: Annotated[str, typer.Option(help="The network (id or name).")],
    cidr: Annotated[str, typer.Option(help="IPv4 CIDR, e.g. 10.0.0.0/24.")],
    gateway: Annotated[str | None, typer.Option(help="Default: the first host.")] = None,
    no_gateway: Annotated[bool, typer.Option("--no-gateway")] = False,
    pool: Annotated[list[str] | None, typer.Option(help="START,END (repeatable); default: "
                                                   "every host but the gateway.")] = None,
    dns: Annotated[list[str] | None, typer.Option(help="A DNS server (repeatable).")] = None,
    dhcp: Annotated[bool, typer.Option(help="Serve DHCP on it.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Give a network its IPv4 subnet."""
    api = Api()
    body: dict[str, Any] = {"name": name, "cidr": cidr, "enable_dhcp": dhcp,
                            "network_id": ref_id(api, NETWORKS, "networks", network, "network"),
                            "dns_nameservers": dns or []}
    if gateway and no_gateway:
        raise typer.BadParameter("--gateway or --no-gateway, not both")
    if gateway or no_gateway:
        body["gateway_ip"] = gateway
    if pool:
        body["allocation_pools"] = [parse_pool(p) for p in pool]
    created(api.call("POST", SUBNETS, json=body), as_json)


@subnet_app.command("list")
@calls("GET /v1/subnets")
def subnet_list(as_json: JsonOpt = False) -> None:
    """List subnets."""
    list_all(SUBNETS, "subnets", [
        ("ID", col("id")), ("Name", col("name")), ("Network", col("network_id")),
        ("CIDR", col("cidr")), ("Gateway", col("gateway_ip"))], as_json)


@subnet_app.command("show")
@calls("GET /v1/subnets/{subnet_id}")
def subnet_show(ref: Ref, as_json: JsonOpt = False) -> None:
    """Show a subnet."""
    show_one(SUBNETS, "subnets", "subnet", ref, as_json)


@subnet_app.command("delete")
@calls("DELETE /v1/subnets/{subnet_id}")
def subnet_delete(ref: Ref) -> None:
    """Delete a subnet (refused while a port holds one of its addresses)."""
    delete_one(SUBNETS, "subnets", "subnet", ref)


# --- ports ---------------------------------------------------------------------------

def fixed_ips_of(ports: Any) -> str:
    return ", ".join(f["ip_address"] for f in ports or [])


@port_app.command("create")
@calls("POST /v1/ports")
def port_create(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    network: Annotated[str, typer.Option(help="The network (id or name).")],
    ip: Annotated[list[str] | None, typer.Option(help="A fixed IP (repeatable); default: "
                                                 "the next free one.")] = None,
    security_group: Annotated[list[str] | None, typer.Option(
        help="A group (id or name, repeatable); default: the project's default.")] = None,
    no_security_group: Annotated[bool, typer.Option("--no-security-group")] = False,
    device_id: str = "", device_owner: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a port."""
    api = Api()
    body: dict[str, Any] = {"name": name, "device_id": device_id, "device_owner": device_owner,
                            "network_id": ref_id(api, NETWORKS, "networks", network, "network")}
    if ip:
        body["fixed_ips"] = [{"ip_address": a} for a in ip]
    if no_security_group:
        body["security_groups"] = []
    elif security_group:
        body["security_groups"] = [ref_id(api, GROUPS, "security_groups", g,
                                          "security group") for g in security_group]
    created(api.call("POST", PORTS, json=body), as_json)


@port_app.command("list")
@calls("GET /v1/ports")
def port_list(device_id: Annotated[str | None, typer.Option()] = None,
              as_json: JsonOpt = False) -> None:
    """List ports."""
    list_all(PORTS, "ports", [
        ("ID", col("id")), ("Name", col("name")), ("MAC", col("mac_address")),
        ("Fixed IPs", col("fixed_ips", fixed_ips_of)), ("Status", col("status")),
        ("Device", col("device_id"))], as_json, {"device_id": device_id})


@port_app.command("show")
@calls("GET /v1/ports/{port_id}")
def port_show(ref: Ref, as_json: JsonOpt = False) -> None:
    """Show a port."""
    show_one(PORTS, "ports", "port", ref, as_json)


@port_app.command("delete")
@calls("DELETE /v1/ports/{port_id}")
def port_delete(ref: Ref) -> None:
    """Delete a port (its addresses are freed, its floating IPs disassociated)."""
    delete_one(PORTS, "ports", "port", ref)
