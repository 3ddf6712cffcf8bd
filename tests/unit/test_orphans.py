"""The ledger reconciler's judgement (activities/control/host_orphans.py), one branch at a time, and
the host listing it judges (activities/hypervisor/host.py: list_instance_resources) on libvirt's
own test:///default driver: only vmflow's domains whose disks are in the host's own
instance dir, only instance dirs named by a UUID."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import libvirt
import pytest

from activities.control.host_orphans import HostFacts, InstanceRow, LedgerRow, classify
from activities.hypervisor.host import HostActivities
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from vmflow.contracts.instances import LedgerEntry
from vmflow.contracts.reconcile import HostDir, HostDomain, HostRef, HostResources
from vmflow.settings import Settings

H = "hv1"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GRACE = 600.0
OLD = NOW - timedelta(hours=1)
A, B, C, D = (str(uuid.UUID(int=i)) for i in (1, 2, 3, 4))


def rows(iid: str, at: datetime = OLD, kinds: tuple[str, ...] = ("claim", "disk", "domain")
         ) -> list[LedgerRow]:
    return [LedgerRow(k, iid, iid, at) for k in kinds]


def facts(domains: tuple[str, ...] = (), dirs: dict[str, float] | None = None,
          ledger: list[LedgerRow] | None = None, claims: dict[str, datetime] | None = None,
          instances: list[InstanceRow] | None = None, running: tuple[str, ...] = ()
          ) -> HostFacts:
    return HostFacts(
        resources=HostResources(H, [HostDomain(i, True) for i in domains],
                                [HostDir(i, age) for i, age in (dirs or {}).items()]),
        ledger=ledger or [], claims=claims or {},
        instances={i.id: i for i in instances or []}, running=frozenset(running), now=NOW,
        grace_s=GRACE)


def deleted(iid: str, at: datetime = OLD) -> InstanceRow:
    return InstanceRow(iid, "deleted", H, at)


def test_old_orphan_of_a_deleted_instance_is_removed_then_forgotten() -> None:
    j = classify(facts(domains=(A,), dirs={A: 3600}, ledger=rows(A), claims={A: OLD},
                       instances=[deleted(A)]))
    [orphan] = j.remove
    assert (orphan.instance_id, orphan.domain, orphan.dir, orphan.claim) == (A, True, True, True)
    assert orphan.entries == [LedgerEntry(H, k, A, A) for k in ("claim", "disk", "domain")]
    assert "is deleted" in orphan.why and "its running domain, dir, claim on hv1" in orphan.why
    assert (j.forget, j.reported, j.deferred) == ([], {}, {})
    assert j.ids() == {A}


def test_removes_only_what_is_there() -> None:
    """A dir whose domain is gone already: the dir goes, every entry is forgotten."""
    j = classify(facts(dirs={A: 3600}, ledger=rows(A), instances=[deleted(A)]))
    [orphan] = j.remove
    assert (orphan.domain, orphan.dir, orphan.claim) == (False, True, False)
    assert len(orphan.entries) == 3


def test_entries_of_gone_resources_are_forgotten() -> None:
    j = classify(facts(ledger=rows(A), instances=[deleted(A)]))
    assert j.remove == [] and j.forget == [LedgerEntry(H, k, A, A)
                                           for k in ("claim", "disk", "domain")]


def test_no_instance_row_at_all_is_gone_too() -> None:
    j = classify(facts(domains=(A,), dirs={A: 3600}))  # a DB restored from before the launch
    [orphan] = j.remove
    assert orphan.entries == [] and "unknown to the database" in orphan.why


def test_a_domain_without_any_time_counts_as_old() -> None:
    """No dir, no row, no entry: not a launch in progress (its dir would come first)."""
    f = facts(domains=(A,))
    j = classify(replace(f, resources=replace(f.resources, domains=[HostDomain(A, False)])))
    [orphan] = j.remove
    assert (orphan.domain, orphan.dir) == (True, False) and "age unknown" in orphan.why
    assert "removing its domain on hv1" in orphan.why  # defined, not running


def test_a_claim_alone_is_released() -> None:
    j = classify(facts(claims={A: OLD}, instances=[deleted(A)]))
    [orphan] = j.remove
    assert (orphan.domain, orphan.dir, orphan.claim) == (False, False, True)


@pytest.mark.parametrize("young", ["ledger", "dir", "claim", "deleted_at"])
def test_younger_than_the_grace_period_is_deferred(young: str) -> None:
    """Any one fresh sign of life keeps the orphan: the newest one decides."""
    recent = NOW - timedelta(seconds=30)
    f = facts(domains=(A,), dirs={A: 30 if young == "dir" else 3600},
              ledger=rows(A, recent if young == "ledger" else OLD),
              claims={A: recent if young == "claim" else OLD},
              instances=[deleted(A, recent if young == "deleted_at" else OLD)])
    j = classify(f)
    assert (j.remove, j.forget, j.reported) == ([], [], {})
    assert "30s old (grace 600s)" in j.deferred[A]
    assert classify(replace(f, grace_s=0)).remove[0].instance_id == A  # grace 0: removed


def test_an_operation_running_defers_even_an_old_orphan() -> None:
    j = classify(facts(domains=(A,), dirs={A: 3600}, ledger=rows(A), instances=[deleted(A)],
                       running=(A,)))
    assert (j.remove, j.forget) == ([], [])
    assert j.deferred == {A: f"instance {A} is deleted, but an operation runs on it"}
    assert classify(facts(ledger=rows(A), running=(A,))).forget == []  # not even forgotten


def test_a_live_instance_is_never_touched() -> None:
    j = classify(facts(domains=(A,), dirs={A: 3600}, ledger=rows(A), claims={A: OLD},
                       instances=[InstanceRow(A, "active", H)]))
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], {}, {})
    assert j.ids() == set()


def test_a_live_instance_without_its_domain_is_reported_not_fixed() -> None:
    j = classify(facts(dirs={A: 3600}, ledger=rows(A),
                       instances=[InstanceRow(A, "active", H),  # no ledger, no dir: the row
                                  InstanceRow(B, "stopped", H)]))  # alone names it
    assert (j.remove, j.forget, j.deferred) == ([], [], {})
    assert j.reported == {
        A: f"instance {A} (active) is on {H} by its row, but no domain of it is defined there",
        B: f"instance {B} (stopped) is on {H} by its row, but no domain of it is defined there"}


def test_states_without_a_domain_are_not_reported() -> None:
    assert classify(facts(instances=[InstanceRow(A, "shelved_offloaded", H)])).reported == {}


def test_a_live_instance_with_resources_on_another_host_is_reported() -> None:
    j = classify(facts(domains=(A,), dirs={A: 3600, B: 3600},
                       instances=[InstanceRow(A, "active", "hv2"), InstanceRow(B, "error", None)]))
    assert (j.remove, j.forget) == ([], [])
    assert j.reported == {A: f"instance {A} lives on hv2, but {H} has its domain and dir",
                          B: f"instance {B} lives on no host, but {H} has its dir"}


def test_nothing_is_reported_while_an_operation_runs() -> None:
    """A launch before its define, a rebuild between undefine and define."""
    j = classify(facts(instances=[InstanceRow(A, "building", H)], running=(A,)))
    assert (j.reported, j.deferred) == ({}, {})


def test_a_mixed_host() -> None:
    j = classify(facts(
        domains=(A, B, C, D), dirs={A: 3600, B: 3600, C: 10, D: 3600},
        ledger=rows(A) + rows(B) + rows(C) + rows(D, NOW - timedelta(seconds=5)),
        instances=[deleted(A), InstanceRow(B, "active", H), deleted(C), deleted(D)],
        running=(D,)))
    assert [r.instance_id for r in j.remove] == [A]
    assert set(j.deferred) == {C, D} and j.reported == {} and j.forget == []
    assert j.plan(H).deferred == list(j.deferred.values())


# ---- the host's listing, on test:///default ------------------------------------------


def define(conn: libvirt.virConnect, iid: str, disk: Path, prefix: str = "vmflow-") -> None:
    cfg = domain_xml.DomainConfig(
        uuid=iid, name=f"{prefix}{iid}", vcpus=1, ram_mb=64, virt_type="qemu",
        disks=[domain_xml.Disk(path=str(disk), target="vda", serial="root")],
        console_log=str(disk.parent / "console.log"), kernel=None, initrd=None, cmdline="",
        extra_cmdline=[], agent=False)
    conn.defineXML(domain_xml.build(cfg))


def test_host_lists_only_its_own_domains_and_instance_dirs(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, host=H, libvirt_uri="test:///default")
    acts = HostActivities(s, Connection(s.libvirt_uri))
    conn = acts.conn.get()
    mine, elsewhere, other_stack, bare = (str(uuid.uuid4()) for _ in range(4))
    instances = s.host_dir() / "instances"
    for iid in (mine, bare):
        (instances / iid).mkdir(parents=True)
    define(conn, mine, instances / mine / "disk")
    define(conn, elsewhere, s.host_dir("hv2") / "instances" / elsewhere / "disk")  # same libvirt
    define(conn, other_stack, instances / other_stack / "disk", prefix="vmflowbench-")
    (instances / "not-a-uuid").mkdir()
    (instances / str(uuid.uuid4())).write_text("a file, not a dir")
    past = time.time() - 3600
    os.utime(instances / bare, (past, past))
    try:
        listing = acts.list_instance_resources(HostRef(H))
        assert listing.host == H
        assert listing.domains == [HostDomain(mine, False)]
        ages = {d.instance_id: d.age_s for d in listing.dirs}
        assert set(ages) == {mine, bare}
        assert ages[mine] < 60 and 3500 < ages[bare] < 3700
        with pytest.raises(Exception, match="not hv2"):
            acts.list_instance_resources(HostRef("hv2"))
    finally:
        for iid in (mine, elsewhere, other_stack):
            conn.lookupByUUIDString(iid).undefine()


def test_a_moves_claim_and_the_source_copy_of_a_resized_server_are_left_to_the_move() -> None:
    """Resize: the source keeps the server's shut-off domain and a claim held by the
    migration's uuid (B) until confirm or revert; neither is an orphan nor worth a
    report while the move has not ended. Once it ended, the claim is an old orphan."""
    resized = InstanceRow(A, "resized", "hv2")
    base = facts(domains=(A,), claims={B: OLD}, instances=[resized])
    j = classify(replace(base, moving={B: A}))
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], {}, {})
    ended = classify(base)  # without the move: reported, and the claim removed
    assert A in ended.reported and [r.instance_id for r in ended.remove] == [B]
