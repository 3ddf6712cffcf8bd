"""The reconciler's judgement of one host's floating-IP NAT
(activities/control/floating_orphans.py): every branch, on plain data; and the facts
the network pass builds for it (activities/control/network_reconcile.py
floating_facts), on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.converter import DataConverter

from activities.control.floating_orphans import (
    FloatingFacts,
    FloatingPlan,
    FloatingRow,
    judge,
)
from activities.control.network_reconcile import floating_facts
from vmflow import db
from vmflow.contracts.networks import (
    FloatingIpRef,
    FloatingIpSpec,
    HostFloatingIps,
    HostNetworks,
)
from vmflow.contracts.security_groups import (
    FloatingIpRemoval,
    FloatingIpRepair,
    NetworkPlan,
    NetworkPlanRequest,
)
from vmflow.models import Host, Instance, Project, User
from vmflow.network_models import FloatingIp, Network, Port
from vmflow.settings import Settings

HOST, OTHER = "hv1", "hv2"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
OLD, YOUNG = NOW - timedelta(hours=1), NOW - timedelta(seconds=5)
GRACE = 600.0
F1, F2 = "172.31.0.11", "172.31.0.12"
NAT1 = FloatingIpSpec(F1, "10.0.0.5", 100)


def row(address: str = F1, host: str | None = HOST, fixed: str = "10.0.0.5", vni: int = 100,
        changed: datetime = OLD, busy: bool = False) -> FloatingRow:
    spec = FloatingIpSpec(address, fixed, vni) if host else None
    return FloatingRow(f"fip-{address}", address, host, spec, changed, busy)


def run(nat: list[FloatingIpSpec], addresses: list[str], rows: list[FloatingRow]
        ) -> FloatingPlan:
    return judge(FloatingFacts(HostFloatingIps(HOST, nat, addresses),
                               {r.address: r for r in rows}, NOW, GRACE))


def removed(plan: FloatingPlan) -> list[FloatingIpRef]:
    return [r.ref for r in plan.remove]


def ensured(plan: FloatingPlan) -> list[FloatingIpSpec]:
    return [r.spec for r in plan.ensure]


def test_a_floating_ip_natted_where_its_guest_runs_is_left_alone() -> None:
    assert run([NAT1], [F1], [row()]) == FloatingPlan([], [], [])


def test_nat_without_a_row_is_removed() -> None:
    plan = run([NAT1], [F1], [])
    assert removed(plan) == [FloatingIpRef(F1)] and not plan.ensure
    assert "no floating IP row" in plan.remove[0].why
    # an address left on the external link without its NAT (a crash between steps) too
    assert removed(run([], [F2], [])) == [FloatingIpRef(F2)]


def test_nat_of_a_floating_ip_not_associated_is_removed() -> None:
    plan = run([NAT1], [F1], [row(host=None)])
    assert removed(plan) == [FloatingIpRef(F1)] and "no host" in plan.remove[0].why


def test_nat_of_a_floating_ip_whose_guest_runs_on_another_host_is_removed() -> None:
    plan = run([NAT1], [F1], [row(host=OTHER)])
    assert removed(plan) == [FloatingIpRef(F1)] and OTHER in plan.remove[0].why


def test_nat_to_another_fixed_ip_or_network_is_made_again() -> None:
    # ensure_floating_ip replaces the floating IP's old mapping
    for wrong in (FloatingIpSpec(F1, "10.0.0.9", 100), FloatingIpSpec(F1, "10.0.0.5", 101)):
        plan = run([wrong], [F1], [row()])
        assert ensured(plan) == [NAT1] and not plan.remove, wrong


def test_a_floating_ip_of_a_guest_here_missing_its_nat_or_address_is_made_again() -> None:
    plan = run([], [], [row()])
    assert ensured(plan) == [NAT1] and "missing on the host" in plan.ensure[0].why
    plan = run([], [F1], [row()])
    assert ensured(plan) == [NAT1] and "NAT was missing" in plan.ensure[0].why
    plan = run([NAT1], [], [row()])
    assert ensured(plan) == [NAT1] and "address was missing" in plan.ensure[0].why


def test_rows_that_changed_lately_or_are_busy_are_deferred() -> None:
    for unsettled in (row(changed=YOUNG), row(busy=True), row(host=OTHER, changed=YOUNG),
                      row(host=None, busy=True)):
        for nat, addresses in (([NAT1], [F1]), ([], [])):
            plan = run(nat, addresses, [unsettled])
            assert not plan.remove and not plan.ensure, unsettled
            if unsettled.host == HOST or nat:  # something to do once settled
                assert len(plan.deferred) == 1, unsettled


def test_a_floating_ip_that_belongs_elsewhere_and_is_not_here_is_nothing_to_do() -> None:
    assert run([], [], [row(host=OTHER), row(F2, host=None)]) == FloatingPlan([], [], [])


def test_several_at_once_each_judged_on_its_own() -> None:
    nat2 = FloatingIpSpec(F2, "10.0.0.6", 100)
    plan = run([nat2, FloatingIpSpec("172.31.0.99", "10.0.0.7", 100)], [F2, "172.31.0.99"],
               [row(), row(F2, host=OTHER, fixed="10.0.0.6")])
    assert removed(plan) == [FloatingIpRef(F2), FloatingIpRef("172.31.0.99")]
    assert ensured(plan) == [NAT1]


# ---- the facts, from the rows ---------------------------------------------------------

@pytest.fixture
def session(tmp_path: Path) -> Session:
    s = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/fips.db")
    db.upgrade(s.db_url)
    return Session(db.engine_for(s.db_url), expire_on_commit=False)


def _world(s: Session) -> None:
    """Guest i1 on hv1 with port a (floating F1), guest i2 on hv2 with port b (floating
    F2), floating 172.31.0.13 not associated, 172.31.0.14 of a guest on hv1 too."""
    s.add(Project(id="p", name="p"))
    s.add(User(id="u", name="u"))
    for h in (HOST, OTHER):
        s.add(Host(name=h, vcpus=1, ram_mb=1, disk_gb=1))
    s.add(Network(id="n", project_id="p", segmentation_id=4242))
    s.add(Network(id="ext", project_id="p", segmentation_id=1, router_external=True))
    s.flush()
    for iid, host in (("i1", HOST), ("i2", OTHER)):
        s.add(Instance(id=iid, name=iid, project_id="p", user_id="u", image_id="x",
                       flavor_id="y", host=host))
    for pid, device in (("a", "i1"), ("b", "i2")):
        s.add(Port(id=pid, network_id="n", project_id="p", mac_address=f"fa:16:3e:00:00:0{pid}",
                   device_id=device, device_owner="compute:nova"))
    for i in range(1, 5):
        s.add(Port(id=f"fp{i}", network_id="ext", project_id="p",
                   mac_address=f"fa:16:3e:00:01:0{i}", device_owner="network:floatingip"))
    s.flush()
    for i, (port, fixed) in enumerate((("a", "10.0.0.5"), ("b", "10.0.0.6"), (None, None),
                                       ("a", "10.0.0.7")), start=1):
        s.add(FloatingIp(id=f"f{i}", project_id="p", floating_network_id="ext",
                         floating_port_id=f"fp{i}", floating_ip_address=f"172.31.0.1{i}",
                         port_id=port, fixed_ip_address=fixed))
    s.commit()


def test_the_facts_name_the_listed_addresses_and_the_floating_ips_of_guests_here(
        session: Session) -> None:
    _world(session)
    listing = HostFloatingIps(HOST, [FloatingIpSpec(F2, "10.0.0.6", 4242)],
                              ["172.31.0.13", "172.31.0.99"])
    facts, busy_if = floating_facts(session, listing, NOW, GRACE)
    assert {a: (r.id, r.host, r.spec) for a, r in facts.rows.items()} == {
        F1: ("f1", HOST, FloatingIpSpec(F1, "10.0.0.5", 4242)),
        F2: ("f2", OTHER, FloatingIpSpec(F2, "10.0.0.6", 4242)),
        "172.31.0.13": ("f3", None, None),
        "172.31.0.14": ("f4", HOST, FloatingIpSpec("172.31.0.14", "10.0.0.7", 4242)),
    }
    assert busy_if[F1] == ["floatingip-f1", "instance-i1"]
    assert busy_if["172.31.0.13"] == ["floatingip-f3"]
    fresh = FloatingFacts(listing, facts.rows, datetime.now(UTC), GRACE)
    plan = judge(fresh)  # the rows were made just now: within the grace, deferred
    assert removed(plan) == [FloatingIpRef("172.31.0.99")]  # no row: no grace to give
    assert ensured(plan) == [] and len(plan.deferred) == 4
    late = FloatingFacts(listing, facts.rows, datetime.now(UTC) + timedelta(hours=1), GRACE)
    plan = judge(late)
    assert removed(plan) == [FloatingIpRef(F2), FloatingIpRef("172.31.0.13"),
                             FloatingIpRef("172.31.0.99")]
    assert ensured(plan) == [FloatingIpSpec(F1, "10.0.0.5", 4242),
                             FloatingIpSpec("172.31.0.14", "10.0.0.7", 4242)]


def test_payloads_of_the_network_pass_from_before_floating_ips_still_decode() -> None:
    """A plan or request recorded by a run of the older code (no floating-IP fields)."""
    conv = DataConverter.default.payload_converter
    old_plan = conv.to_payloads([{"host": HOST, "remove_ports": [], "deferred": ["x"]}])
    plan = conv.from_payloads(old_plan, [NetworkPlan])[0]
    assert plan == NetworkPlan(HOST, deferred=["x"])
    assert plan.remove_floating_ips == [] and plan.ensure_floating_ips == []
    old_req = conv.to_payloads([{"listing": {"host": HOST, "networks": []}, "grace_s": 0.0}])
    req = conv.from_payloads(old_req, [NetworkPlanRequest])[0]
    assert req == NetworkPlanRequest(HostNetworks(HOST, []), 0.0, None)
    new = NetworkPlan(HOST, remove_floating_ips=[FloatingIpRemoval(FloatingIpRef(F1), "w")],
                      ensure_floating_ips=[FloatingIpRepair(NAT1, "w")])
    assert conv.from_payloads(conv.to_payloads([new]), [NetworkPlan])[0] == new
