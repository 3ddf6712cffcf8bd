"""`vmflow security-group|security-group-rule ...`: create, list, show, delete."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    JsonOpt,
    calls,
    col,
    emit,
    kv_table,
    out,
    seg,
)
from vmflow.cli.networks import (
    GROUPS,
    RULES,
    Ref,
    created,
    delete_one,
    list_all,
    ref_id,
    show_one,
)

sg_app = typer.Typer(no_args_is_help=True, help="Security groups.")
rule_app = typer.Typer(no_args_is_help=True, help="Security group rules.")


# --- security groups and rules -------------------------------------------------------

@sg_app.command("create")
@calls("POST /v1/security-groups")
def sg_create(name: Annotated[str, typer.Argument(metavar="NAME")], description: str = "",
              as_json: JsonOpt = False) -> None:
    """Create a security group (it allows any egress until you add rules)."""
    created(Api().call("POST", GROUPS, json={"name": name, "description": description}),
            as_json)


@sg_app.command("list")
@calls("GET /v1/security-groups")
def sg_list(as_json: JsonOpt = False) -> None:
    """List security groups (the project's `default` one is made on first use)."""
    list_all(GROUPS, "security_groups", [
        ("ID", col("id")), ("Name", col("name")), ("Description", col("description")),
        ("Rules", col("security_group_rules", lambda r: str(len(r))))], as_json)


@sg_app.command("show")
@calls("GET /v1/security-groups/{group_id}")
def sg_show(ref: Ref, as_json: JsonOpt = False) -> None:
    """Show a security group with its rules."""
    show_one(GROUPS, "security_groups", "security group", ref, as_json)


@sg_app.command("delete")
@calls("DELETE /v1/security-groups/{group_id}")
def sg_delete(ref: Ref) -> None:
    """Delete a security group (refused while a port is in it)."""
    delete_one(GROUPS, "security_groups", "security group", ref)


def port_range(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    low, _, high = text.partition(":")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not PORT or MIN:MAX",
                                 param_hint="--dst-port") from None


@rule_app.command("create")
@calls("POST /v1/security-group-rules")
def rule_create(
    group: Annotated[str, typer.Argument(metavar="GROUP")],
    ingress: Annotated[bool, typer.Option("--ingress/--egress")] = True,
    ethertype: Annotated[str, typer.Option(help="IPv4 or IPv6.")] = "IPv4",
    protocol: Annotated[str | None, typer.Option(help="tcp, udp, icmp or 0-255; "
                                                 "default: any.")] = None,
    dst_port: Annotated[str | None, typer.Option(help="PORT or MIN:MAX (tcp, udp); "
                                                 "TYPE:CODE for icmp.")] = None,
    remote_ip: Annotated[str | None, typer.Option(help="A CIDR allowed.")] = None,
    remote_group: Annotated[str | None, typer.Option(help="Members of this group.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an allow rule to a security group."""
    api = Api()
    low, high = port_range(dst_port)
    body: dict[str, Any] = {
        "security_group_id": ref_id(api, GROUPS, "security_groups", group, "security group"),
        "direction": "ingress" if ingress else "egress", "ethertype": ethertype,
        "protocol": protocol, "port_range_min": low, "port_range_max": high,
        "remote_ip_prefix": remote_ip}
    if remote_group:
        body["remote_group_id"] = ref_id(api, GROUPS, "security_groups", remote_group,
                                         "security group")
    created(api.call("POST", RULES, json=body), as_json)


@rule_app.command("list")
@calls("GET /v1/security-group-rules")
def rule_list(as_json: JsonOpt = False) -> None:
    """List security group rules."""
    list_all(RULES, "security_group_rules", [
        ("ID", col("id")), ("Group", col("security_group_id")), ("Direction", col("direction")),
        ("Ethertype", col("ethertype")), ("Protocol", col("protocol")),
        ("Ports", col("port_range_min")), ("To", col("port_range_max")),
        ("Remote IP", col("remote_ip_prefix")), ("Remote group", col("remote_group_id"))],
        as_json)


@rule_app.command("show")
@calls("GET /v1/security-group-rules/{rule_id}")
def rule_show(rule_id: Annotated[str, typer.Argument(metavar="ID")],
              as_json: JsonOpt = False) -> None:
    """Show a rule."""
    obj = Api().get(f"{RULES}/{seg(rule_id)}")
    emit(obj, as_json, lambda: kv_table(obj))


@rule_app.command("delete")
@calls("DELETE /v1/security-group-rules/{rule_id}")
def rule_delete(rule_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Delete a rule."""
    Api().call("DELETE", f"{RULES}/{seg(rule_id)}")
    out().print(f"deleted security group rule {escape(rule_id)}")
