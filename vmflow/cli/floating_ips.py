"""`vmflow floating-ip ...`: allocate from an external network, list, show, release,
and `set`/`unset` to associate with a port. Named by id or by address."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    ApiError,
    JsonOpt,
    calls,
    col,
    emit,
    is_uuid,
    kv_table,
    out,
    seg,
)
from vmflow.cli.networks import (
    FIPS,
    NETWORKS,
    PORTS,
    created,
    list_all,
    ref_id,
)

fip_app = typer.Typer(no_args_is_help=True, help="Floating IPs from an external network.")


# --- floating IPs --------------------------------------------------------------------

def fip_id(api: Api, ref: str) -> str:
    """A floating IP by id or by its address."""
    if is_uuid(ref):
        return ref
    found = [f for f in api.items(FIPS, "floatingips") if f["floating_ip_address"] == ref]
    if not found:
        raise ApiError(f"no floating IP {ref!r}")
    return str(found[0]["id"])


FipRef = Annotated[str, typer.Argument(metavar="ID_OR_ADDRESS")]


@fip_app.command("create")
@calls("POST /v1/floating-ips")
def fip_create(network: Annotated[str, typer.Argument(metavar="EXTERNAL_NETWORK")],
               address: Annotated[str | None, typer.Option(help="This address.")] = None,
               port: Annotated[str | None, typer.Option(help="Associate with this port.")]
               = None, as_json: JsonOpt = False) -> None:
    """Allocate a floating IP from an external network."""
    api = Api()
    body: dict[str, Any] = {"floating_network_id": ref_id(api, NETWORKS, "networks", network,
                                                          "network")}
    if address:
        body["floating_ip_address"] = address
    if port:
        body["port_id"] = ref_id(api, PORTS, "ports", port, "port")
    created(api.call("POST", FIPS, json=body), as_json)


@fip_app.command("list")
@calls("GET /v1/floating-ips")
def fip_list(as_json: JsonOpt = False) -> None:
    """List floating IPs."""
    list_all(FIPS, "floatingips", [
        ("ID", col("id")), ("Address", col("floating_ip_address")), ("Port", col("port_id")),
        ("Fixed IP", col("fixed_ip_address")), ("Status", col("status"))], as_json)


@fip_app.command("show")
@calls("GET /v1/floating-ips/{fip_id}")
def fip_show(ref: FipRef, as_json: JsonOpt = False) -> None:
    """Show a floating IP."""
    api = Api()
    obj = api.get(f"{FIPS}/{seg(fip_id(api, ref))}")
    emit(obj, as_json, lambda: kv_table(obj))


@fip_app.command("set")
@calls("PUT /v1/floating-ips/{fip_id}")
def fip_set(ref: FipRef, port: Annotated[str, typer.Option(help="The port (id or name).")],
            fixed_ip: Annotated[str | None, typer.Option(help="Which of its fixed IPs.")]
            = None, as_json: JsonOpt = False) -> None:
    """Associate a floating IP with a port."""
    api = Api()
    body = {"port_id": ref_id(api, PORTS, "ports", port, "port"), "fixed_ip_address": fixed_ip}
    created(api.call("PUT", f"{FIPS}/{seg(fip_id(api, ref))}", json=body), as_json)


@fip_app.command("unset")
@calls("PUT /v1/floating-ips/{fip_id}")
def fip_unset(ref: FipRef, as_json: JsonOpt = False) -> None:
    """Disassociate a floating IP from its port."""
    api = Api()
    created(api.call("PUT", f"{FIPS}/{seg(fip_id(api, ref))}", json={"port_id": None}), as_json)


@fip_app.command("delete")
@calls("DELETE /v1/floating-ips/{fip_id}")
def fip_delete(ref: FipRef) -> None:
    """Release a floating IP."""
    api = Api()
    rid = fip_id(api, ref)
    api.call("DELETE", f"{FIPS}/{seg(rid)}")
    out().print(f"released floating IP {escape(rid)}")
