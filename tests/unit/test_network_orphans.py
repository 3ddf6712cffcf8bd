"""The reconciler's judgement of one host's guest networks
(activities/control/network_orphans.py): every branch, on plain data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from activities.control.network_orphans import (
    NO_MAC,
    NO_NETWORK,
    NetworkFacts,
    NetworkRow,
    PortRow,
    judge,
)
from vmflow.contracts.networks import (
    HostNetwork,
    HostNetworks,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.contracts.security_groups import NetworkPlan

HOST, OTHER = "hv1", "hv2"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
OLD, YOUNG = NOW - timedelta(hours=1), NOW - timedelta(seconds=5)
GRACE = 600.0
N1, N2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
P1, P2, P3 = ("aaaaaaaa-0000-0000-0000-00000000000" + c for c in "123")


def net_row(nid: str = N1, vni: int = 100, changed: datetime = OLD,
            dhcp: bool = True, spec: bool = True) -> NetworkRow:
    s = NetworkSpec(nid, vni, "10.0.0.0/24", "10.0.0.1", dhcp=dhcp) if spec else None
    return NetworkRow(nid, vni, changed, s)


def port_row(pid: str = P1, nid: str = N1, host: str = HOST, changed: datetime = OLD,
             busy: bool = False, ip: bool = True) -> PortRow:
    mac = f"fa:16:3e:00:00:0{pid[-1]}"
    spec = PortSpec(pid, nid, mac, f"10.0.0.1{pid[-1]}") if ip else None
    return PortRow(pid, nid, mac, host, changed, spec, busy)


def listed(nid: str | None = N1, vni: int = 100, bridge: bool = True, vxlan: bool = True,
           dhcp: bool = True, ports: tuple[str, ...] = (P1,)) -> HostNetwork:
    return HostNetwork(nid, vni, bridge, vxlan, dhcp, list(ports))


def run(networks: list[HostNetwork], filters: list[str], nets: list[NetworkRow],
        ports: list[PortRow]) -> NetworkPlan:
    return judge(NetworkFacts(HostNetworks(HOST, networks, filters),
                              {n.id: n for n in nets}, {p.id: p for p in ports}, NOW, GRACE))


def nothing(plan: NetworkPlan) -> bool:
    return plan == NetworkPlan(HOST)


def test_a_whole_network_with_its_port_here_is_left_alone() -> None:
    assert nothing(run([listed()], [P1], [net_row()], [port_row()]))


def test_a_network_without_a_row_is_removed_with_its_ports_filters() -> None:
    plan = run([listed()], [P1], [], [])
    assert [r.ref for r in plan.remove_networks] == [NetworkRef(N1, 100)]
    # the reservation goes with the state dir; the filter by itself
    assert [r.ref for r in plan.remove_ports] == [PortRef(P1, NO_NETWORK, NO_MAC)]


def test_a_network_without_a_row_made_lately_on_the_host_is_deferred() -> None:
    plan = run([replace(listed(), age_s=5.0)], [], [], [])
    assert plan.deferred and not plan.remove_networks
    plan = run([replace(listed(), age_s=GRACE + 1)], [], [], [])
    assert [r.ref for r in plan.remove_networks] == [NetworkRef(N1, 100)]


def test_a_bridge_that_lost_its_id_is_removed_by_its_vni() -> None:
    plan = run([listed(None, vni=333, ports=())], [], [net_row()], [])
    assert [r.ref for r in plan.remove_networks] == [NetworkRef(NO_NETWORK, 333)]


def test_a_bridge_that_lost_its_id_but_has_a_row_by_vni_is_made_again() -> None:
    plan = run([listed(None, dhcp=False, ports=())], [P1], [net_row()], [port_row()])
    assert [r.spec.network_id for r in plan.ensure_networks] == [N1]
    assert [r.port.port_id for r in plan.ensure_ports] == [P1]
    assert not plan.remove_networks


def test_another_vni_than_the_rows_is_reported_not_touched() -> None:
    plan = run([listed(vni=999)], [P1], [net_row()], [port_row()])
    assert plan.reported and "vni 100" in plan.reported[0]
    assert not plan.remove_networks and not plan.ensure_networks and not plan.remove_ports


def test_a_partial_network_with_a_port_here_is_made_again_with_its_ports() -> None:
    for partial in (dict(bridge=False), dict(vxlan=False), dict(dhcp=False)):
        plan = run([listed(**partial)], [P1], [net_row()], [port_row()])  # type: ignore[arg-type]
        assert [r.spec.network_id for r in plan.ensure_networks] == [N1], partial
        assert [r.port.port_id for r in plan.ensure_ports] == [P1], partial


def test_no_dhcp_server_is_whole_when_the_subnet_wants_none() -> None:
    assert nothing(run([listed(dhcp=False)], [P1], [net_row(dhcp=False)], [port_row()]))


def test_a_network_with_no_port_here_is_removed_once_old() -> None:
    plan = run([listed(ports=())], [], [net_row()], [port_row(host=OTHER)])
    assert [r.ref for r in plan.remove_networks] == [NetworkRef(N1, 100)]


def test_a_young_network_with_no_port_here_is_deferred() -> None:
    plan = run([listed(ports=())], [], [net_row(changed=YOUNG)], [])
    assert plan.deferred and not plan.remove_networks


def test_a_network_whose_port_is_busy_is_not_removed() -> None:
    plan = run([listed(ports=())], [], [net_row()], [port_row(host="", busy=True)])
    assert plan.deferred and not plan.remove_networks


def test_a_missing_network_with_a_port_here_is_made_again() -> None:
    plan = run([], [], [net_row()], [port_row()])
    assert [r.spec.network_id for r in plan.ensure_networks] == [N1]
    assert [r.port.port_id for r in plan.ensure_ports] == [P1]
    assert "missing" in plan.ensure_networks[0].why


def test_a_missing_network_whose_port_is_being_plugged_is_deferred() -> None:
    for port in (port_row(changed=YOUNG), port_row(busy=True)):
        plan = run([], [], [net_row()], [port])
        assert plan.deferred and not plan.ensure_networks and not plan.ensure_ports


def test_a_missing_network_without_a_subnet_is_reported() -> None:
    plan = run([], [], [net_row(spec=False)], [port_row()])
    assert plan.reported and not plan.ensure_networks and not plan.ensure_ports


def test_a_missing_filter_or_reservation_is_ensured() -> None:
    plan = run([listed()], [], [net_row()], [port_row()])
    assert [(r.port.port_id, "filter" in r.why) for r in plan.ensure_ports] == [(P1, True)]
    plan = run([listed(ports=())], [P1], [net_row()], [port_row()])
    assert [(r.port.port_id, "reservation" in r.why) for r in plan.ensure_ports] == [(P1, True)]
    assert not plan.ensure_networks


def test_a_young_or_busy_port_is_not_ensured() -> None:
    for port in (port_row(changed=YOUNG), port_row(busy=True)):
        assert nothing(run([listed()], [], [net_row()], [port]))


def test_a_port_without_an_address_is_reported() -> None:
    plan = run([listed()], [], [net_row()], [port_row(ip=False)])
    assert plan.reported and not plan.ensure_ports


def test_a_filter_without_a_port_row_is_removed() -> None:
    plan = run([listed(ports=(P1, P2))], [P1, P2], [net_row()], [port_row()])
    assert [r.ref for r in plan.remove_ports] == [PortRef(P2, N1, NO_MAC)]
    plan = run([listed()], [P1, P3], [net_row()], [port_row()])
    assert [r.ref for r in plan.remove_ports] == [PortRef(P3, NO_NETWORK, NO_MAC)]


def test_a_port_on_another_host_is_removed_here_once_settled() -> None:
    other = port_row(P2, host=OTHER)
    plan = run([listed(ports=(P1, P2))], [P1, P2], [net_row()], [port_row(), other])
    assert [r.ref for r in plan.remove_ports] == [PortRef(P2, N1, other.mac)]
    for moving in (replace(other, changed_at=YOUNG), replace(other, busy=True)):
        plan = run([listed(ports=(P1, P2))], [P1, P2], [net_row()], [port_row(), moving])
        assert not plan.remove_ports and plan.deferred


def test_an_unbound_port_is_removed_from_the_host() -> None:
    plan = run([listed()], [P1], [net_row()], [port_row(host="")])
    # no port left here: the network goes, its reservations with its state dir
    assert [r.ref for r in plan.remove_ports] == [PortRef(P1, NO_NETWORK, port_row().mac)]
    assert [r.ref for r in plan.remove_networks] == [NetworkRef(N1, 100)]


def test_a_reservation_of_a_port_here_in_another_network_is_reported() -> None:
    plan = run([listed(), listed(N2, vni=200, ports=(P1,))], [P1],
               [net_row(), net_row(N2, 200)], [port_row()])
    assert not plan.remove_ports
    assert any("outside its network" in line for line in plan.reported)
