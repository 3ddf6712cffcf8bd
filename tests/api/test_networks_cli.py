"""`vmflow network|subnet|port|security-group|security-group-rule|floating-ip ...`
against the real API test app (the CLI in a thread, bridged onto the app): names
resolve to ids, every request body is what the API expects, errors exit 1."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlmodel import select

from tests.api.conftest import World, session
from tests.api.test_share_cli import vmflow
from vmflow.network_models import InstanceNic


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


async def test_a_network_a_port_a_rule_and_a_floating_ip_by_name(
        api: httpx.AsyncClient, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    async def run(who: Any, *args: str) -> Any:
        code, _ = await vmflow(api, who, *args, "--json")
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return json.loads(captured.out)

    net = await run(world.alice, "network", "create", "cli-net")
    subnet = await run(world.alice, "subnet", "create", "cli-sub", "--network", "cli-net",
                       "--cidr", "10.70.0.0/24", "--pool", "10.70.0.10,10.70.0.20",
                       "--dns", "9.9.9.9")
    assert (subnet["network_id"], subnet["allocation_pools"], subnet["dns_nameservers"]) == (
        net["id"], [{"start": "10.70.0.10", "end": "10.70.0.20"}], ["9.9.9.9"])
    group = await run(world.alice, "security-group", "create", "cli-web")
    rule = await run(world.alice, "security-group-rule", "create", "cli-web", "--protocol",
                     "tcp", "--dst-port", "8000:8080", "--remote-ip", "0.0.0.0/0")
    assert (rule["security_group_id"], rule["direction"], rule["port_range_min"],
            rule["port_range_max"]) == (group["id"], "ingress", 8000, 8080)
    port = await run(world.alice, "port", "create", "cli-port", "--network", "cli-net",
                     "--ip", "10.70.0.15", "--security-group", "cli-web")
    assert (port["fixed_ips"][0]["ip_address"], port["security_groups"]) == (
        "10.70.0.15", [group["id"]])
    assert [p["id"] for p in await run(world.alice, "port", "list")
            if p["name"] == "cli-port"] == [port["id"]]

    ext = await run(world.admin, "network", "create", "cli-public", "--external")
    assert ext["router:external"] is True
    await run(world.admin, "subnet", "create", "cli-public-sub", "--network", ext["id"],
              "--cidr", "192.0.2.0/28")
    fip = await run(world.alice, "floating-ip", "create", ext["id"])
    addr = fip["floating_ip_address"]
    assert (await run(world.alice, "floating-ip", "set", addr, "--port", "cli-port")
            )["fixed_ip_address"] == "10.70.0.15"
    assert (await run(world.alice, "floating-ip", "unset", addr))["port_id"] is None
    assert (await run(world.alice, "floating-ip", "show", addr))["id"] == fip["id"]

    # a group in use: exit 1 with the API's message
    code, _ = await vmflow(api, world.alice, "security-group", "delete", "cli-web")
    assert code == 1 and "in use" in capsys.readouterr().err
    for args in (("floating-ip", "delete", addr), ("port", "delete", "cli-port"),
                 ("security-group-rule", "delete", rule["id"]),
                 ("security-group", "delete", "cli-web"), ("network", "delete", "cli-net")):
        code, _ = await vmflow(api, world.alice, *args)
        assert code == 0, capsys.readouterr().err
    code, _ = await vmflow(api, world.admin, "network", "delete", "cli-public")
    assert code == 0
    code, _ = await vmflow(api, world.alice, "network", "show", "cli-net")
    assert code == 1


async def test_server_create_sends_its_networks_ports_and_groups(
        api: httpx.AsyncClient, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """--network/--port by name become {uuid}/{port} entries, --security-group names;
    the API takes them (InstanceNic rows written); auto stands alone."""
    async def run(*args: str) -> tuple[int, Any]:
        code, bridge = await vmflow(api, world.alice, *args)
        return code, bridge

    code, _ = await run("network", "create", "cli-srv-net", "--json")
    assert code == 0
    code, _ = await run("subnet", "create", "cli-srv-sub", "--network", "cli-srv-net",
                        "--cidr", "10.71.0.0/24", "--json")
    assert code == 0
    code, _ = await run("port", "create", "cli-srv-port", "--network", "cli-srv-net", "--json")
    assert code == 0
    capsys.readouterr()
    code, bridge = await run("server", "create", "cli-nic-vm", "--image", "cirros",
                             "--flavor", "m1.tiny", "--network", "cli-srv-net",
                             "--port", "cli-srv-port", "--security-group", "default", "--json")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (post,) = [r for r in bridge.seen if r.method == "POST"]
    body = json.loads(post.content)
    nets = (await api.get("/v1/networks", headers=world.alice.h)).json()["networks"]
    net_id = next(n["id"] for n in nets if n["name"] == "cli-srv-net")
    ports = (await api.get("/v1/ports", headers=world.alice.h)).json()["ports"]
    port_id = next(p["id"] for p in ports if p["name"] == "cli-srv-port")
    assert body["networks"] == [{"uuid": net_id}, {"port": port_id}]
    assert body["security_groups"] == [{"name": "default"}]
    sid = json.loads(captured.out)["server"]["id"]
    with session() as s:
        rows = list(s.exec(select(InstanceNic).where(InstanceNic.instance_id == sid)))
    assert len(rows) == 2
    code, bridge = await run("server", "create", "cli-nic-x", "--image", "cirros",
                             "--flavor", "m1.tiny", "--network", "auto", "--network",
                             "cli-srv-net")
    assert code != 0 and not [r for r in bridge.seen if r.method == "POST"]
