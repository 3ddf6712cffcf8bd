"""The ledger reconciler's judgement for storage hosts (activities/control/share_orphans.py),
one branch at a time; the btrfs subvolume list it reads (activities/storage/btrfs.py), and
the storage listing refusing to answer for another host."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.control.share_orphans import (
    LedgerRow,
    ShareRow,
    SnapshotRow,
    StorageFacts,
    age_s,
    classify,
)
from activities.storage.btrfs import parse_subvolume_list
from activities.storage.ganesha import GaneshaExports
from activities.storage.shares import StorageActivities
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import LedgerEntry
from vmflow.contracts.reconcile import HostRef, StorageResources, StoredExport, StoredSubvolume
from vmflow.settings import Settings

H = "nas1"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GRACE = 600.0
OLD = NOW - timedelta(hours=1)
A, B, C, D = (str(uuid.UUID(int=i)) for i in (1, 2, 3, 4))
S1, S2 = (str(uuid.UUID(int=i)) for i in (11, 12))
HOUR = 3600.0


def share_rows(iid: str, at: datetime = OLD) -> list[LedgerRow]:
    return [LedgerRow("share", iid, at)]


def snap_rows(sid: str, at: datetime = OLD) -> list[LedgerRow]:
    return [LedgerRow("share_snapshot", sid, at)]


def facts(shares: dict[str, float] | None = None, exports: dict[str, float] | None = None,
          snapshots: dict[str, tuple[float, str | None]] | None = None,
          ledger: list[LedgerRow] | None = None, rows: list[ShareRow] | None = None,
          snap_rows_: list[SnapshotRow] | None = None, running: tuple[str, ...] = ()
          ) -> StorageFacts:
    return StorageFacts(
        resources=StorageResources(
            H, [StoredSubvolume(i, age) for i, age in (shares or {}).items()],
            [StoredSubvolume(i, age, parent) for i, (age, parent) in (snapshots or {}).items()],
            [StoredExport(i, 100 + n, age) for n, (i, age) in enumerate((exports or {}).items())]),
        ledger=ledger or [], shares={r.id: r for r in rows or []},
        snapshots={r.id: r for r in snap_rows_ or []}, running=frozenset(running), now=NOW,
        grace_s=GRACE)


def share(iid: str, status: str = "available", host: str | None = H,
          at: datetime = OLD) -> ShareRow:
    return ShareRow(iid, status, host, at)


def snapshot(sid: str, of: str, status: str = "available", at: datetime = OLD) -> SnapshotRow:
    return SnapshotRow(sid, of, status, at)


# ---- gone: no row ------------------------------------------------------------------

def test_an_old_share_without_a_row_is_removed_then_forgotten() -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, ledger=share_rows(A)))
    [orphan] = j.remove
    assert (orphan.kind, orphan.id, orphan.share_id, orphan.removes) == ("share", A, A, 2)
    assert orphan.entries == [LedgerEntry(H, "share", A)]
    assert orphan.why == (f"share {A} is unknown to the database (last sign of life 3600s "
                          f"ago): removing its subvolume and export on {H}")
    assert (j.forget, j.reported, j.deferred) == ([], [], [])
    assert j.asked == {A}


@pytest.mark.parametrize("listing,removes,what", [
    ({"shares": {A: HOUR}}, 1, "subvolume"),
    ({"exports": {A: HOUR}}, 1, "export"),  # a create that died between the two
])
def test_removes_what_is_there(listing: dict[str, dict[str, float]], removes: int,
                               what: str) -> None:
    [orphan] = classify(facts(ledger=share_rows(A), **listing)).remove  # type: ignore[arg-type]
    assert orphan.removes == removes and orphan.why.endswith(f"its {what} on {H}")


def test_no_ledger_row_either_is_still_an_orphan() -> None:
    """A subvolume nothing names (its create was terminated while the storage step
    still ran, and the force delete cleaned up before it finished)."""
    [orphan] = classify(facts(shares={A: HOUR}, exports={A: HOUR})).remove
    assert orphan.entries == [] and orphan.removes == 2


def test_entries_of_gone_shares_and_snapshots_are_forgotten() -> None:
    j = classify(facts(ledger=share_rows(A) + snap_rows(S1)))
    assert j.remove == [] and j.forget == [LedgerEntry(H, "share_snapshot", S1),
                                           LedgerEntry(H, "share", A)]
    assert j.asked == {A}  # the snapshot's share is unknown: nothing to ask


def test_an_old_snapshot_without_a_row_is_removed_before_shares() -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, snapshots={S1: (HOUR, A)},
                       ledger=share_rows(A) + snap_rows(S1)))
    assert [(o.kind, o.id) for o in j.remove] == [("share_snapshot", S1), ("share", A)]
    snap = j.remove[0]
    assert (snap.share_id, snap.removes, snap.entries) == (
        A, 1, [LedgerEntry(H, "share_snapshot", S1)])
    assert snap.why.startswith(f"share snapshot {S1} is unknown to the database")


def test_a_live_shares_snapshot_without_a_row_is_removed_the_share_kept() -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, snapshots={S1: (HOUR, A)},
                       ledger=share_rows(A) + snap_rows(S1), rows=[share(A)]))
    assert [(o.kind, o.id) for o in j.remove] == [("share_snapshot", S1)]
    assert (j.forget, j.reported, j.deferred) == ([], [], [])


@pytest.mark.parametrize("young", ["ledger", "subvolume", "export"])
def test_younger_than_the_grace_period_is_deferred(young: str) -> None:
    """Any one recent sign of life keeps it: its newest one counts."""
    j = classify(facts(shares={A: 10 if young == "subvolume" else HOUR},
                       exports={A: 10 if young == "export" else HOUR},
                       ledger=share_rows(A, NOW - timedelta(seconds=10) if young == "ledger"
                                         else OLD)))
    assert j.remove == [] and j.forget == []
    assert j.deferred == [f"share {A} is unknown to the database; its last sign of life on "
                          f"{H} is 10s old (grace 600s)"]


def test_young_ledger_rows_alone_are_deferred_not_forgotten() -> None:
    j = classify(facts(ledger=share_rows(A, NOW - timedelta(seconds=5))))
    assert j.forget == [] and len(j.deferred) == 1


def test_an_operation_running_defers_even_an_old_orphan() -> None:
    j = classify(facts(shares={A: HOUR}, ledger=share_rows(A), running=(A,)))
    assert j.remove == [] and j.deferred == [
        f"share {A} is unknown to the database, but an operation runs on share {A}"]


def test_a_snapshot_waits_for_its_shares_operation() -> None:
    j = classify(facts(snapshots={S1: (HOUR, A), S2: (HOUR, None)}, running=(A,)))
    assert [o.id for o in j.remove] == [S2]  # no share known: nothing to wait for
    assert j.deferred == [f"share snapshot {S1} is unknown to the database, but an "
                          f"operation runs on share {A}"]


def test_age_is_the_newest_sign_of_life() -> None:
    f = facts(shares={A: 300}, exports={A: 200}, ledger=share_rows(A),
              snapshots={S1: (HOUR, A)})
    assert age_s(f, "share", A) == 200
    assert age_s(f, "share_snapshot", S1) == HOUR
    assert age_s(f, "share", B) is None


# ---- live: a row -------------------------------------------------------------------

def test_a_live_share_is_never_touched() -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, ledger=share_rows(A),
                       snapshots={S1: (HOUR, A)}, snap_rows_=[snapshot(S1, A)],
                       rows=[share(A)]))
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], [], [])
    assert j.asked == set()  # nothing to say: Temporal is not asked


@pytest.mark.parametrize("listing,missing", [
    ({"exports": {A: HOUR}}, "subvolume"),
    ({"shares": {A: HOUR}}, "export"),
    ({}, "subvolume or export"),
])
def test_an_available_share_without_its_subvolume_or_export_is_reported(
        listing: dict[str, dict[str, float]], missing: str) -> None:
    j = classify(facts(rows=[share(A)], ledger=share_rows(A), **listing))  # type: ignore[arg-type]
    assert j.reported == [f"share {A} (available) is on {H} by its rows, but {H} has no "
                          f"{missing} of it"]
    assert (j.remove, j.forget, j.deferred) == ([], [], [])
    assert j.asked == {A}


def test_nothing_is_reported_while_an_operation_runs() -> None:
    j = classify(facts(rows=[share(A), share(B, "creating")], running=(A, B)))
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], [], [])


@pytest.mark.parametrize("status", ["creating", "extending", "shrinking", "deleting"])
def test_a_share_stuck_in_a_transitional_status_is_reported(status: str) -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, rows=[share(A, status)]))
    assert j.reported == [f"share {A} has been {status} for 3600s with no operation running "
                          "(grace 600s): its operation died; reset_status or force_delete it"]
    assert j.remove == []


def test_a_transitional_status_younger_than_the_grace_is_not_reported() -> None:
    j = classify(facts(rows=[share(A, "creating", at=NOW - timedelta(seconds=30))]))
    assert j.reported == []


@pytest.mark.parametrize("status", ["error", "error_deleting", "extending_error"])
def test_error_statuses_are_the_admins_already(status: str) -> None:
    j = classify(facts(rows=[share(A, status)], ledger=share_rows(A)))
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], [], [])


def test_a_share_living_on_another_host_with_parts_here_is_reported() -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, rows=[share(A, host="nas2")]))
    assert j.reported == [f"share {A} lives on nas2 by its rows, but {H} has its subvolume "
                          "and export"]
    assert j.remove == []


def test_a_share_of_another_host_with_nothing_here_is_not_named() -> None:
    j = classify(facts(rows=[share(A, host="nas2")]))
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], [], [])


def test_an_available_snapshot_without_its_subvolume_is_reported() -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, rows=[share(A)],
                       snap_rows_=[snapshot(S1, A)]))
    assert j.reported == [f"share snapshot {S1} (available) is on {H} by its rows, but {H} "
                          "has no subvolume of it"]
    assert j.asked == {A}


@pytest.mark.parametrize("status", ["creating", "deleting"])
def test_a_snapshot_stuck_in_a_transitional_status_is_reported(status: str) -> None:
    j = classify(facts(shares={A: HOUR}, exports={A: HOUR}, snapshots={S1: (HOUR, A)},
                       rows=[share(A)], snap_rows_=[snapshot(S1, A, status)]))
    assert [line.split(" with ")[0] for line in j.reported] == [
        f"share snapshot {S1} has been {status} for 3600s"]
    assert classify(facts(shares={A: HOUR}, exports={A: HOUR}, snapshots={S1: (HOUR, A)},
                          rows=[share(A)], snap_rows_=[snapshot(S1, A, status)],
                          running=(A,))).reported == []


def test_a_snapshot_whose_share_lives_elsewhere_is_reported() -> None:
    j = classify(facts(snapshots={S1: (HOUR, None)}, rows=[share(A, host="nas2")],
                       snap_rows_=[snapshot(S1, A)]))
    assert j.reported == [f"share snapshot {S1} lives on nas2 by its rows, but {H} has its "
                          "subvolume"]


def test_a_mixed_host() -> None:
    """Live, young orphan, old orphan, busy orphan, bare ledger rows, on one host."""
    young = NOW - timedelta(seconds=60)
    j = classify(facts(
        shares={A: HOUR, B: 60, C: HOUR, D: HOUR}, exports={A: HOUR, B: 60, C: HOUR},
        snapshots={S1: (HOUR, C)},
        ledger=share_rows(A) + share_rows(B, young) + share_rows(C) + snap_rows(S1)
        + snap_rows(S2),
        rows=[share(A)], running=(D,)))
    assert [(o.kind, o.id, o.removes) for o in j.remove] == [
        ("share_snapshot", S1, 1), ("share", C, 2)]
    assert j.forget == [LedgerEntry(H, "share_snapshot", S2)]
    assert len(j.deferred) == 2 and B in j.deferred[0] and D in j.deferred[1]
    assert j.reported == []
    assert j.asked == {B, C, D}


# ---- what the judgement reads ------------------------------------------------------

LISTING = """\
ID 256 gen 7 top level 5 parent_uuid -                                    uuid 32dbcf59-015e-1a4a-8b5a-0584321778a4 path shares/a
ID 257 gen 8 top level 5 parent_uuid 32dbcf59-015e-1a4a-8b5a-0584321778a4 uuid bd23422d-7aaf-7440-9d59-4f2ddde1641d path snapshots/s1
"""  # noqa: E501  (btrfs-progs 6.2, as it prints it)


def test_the_subvolume_list_is_parsed_with_each_parent() -> None:
    assert parse_subvolume_list(LISTING) == {
        "shares/a": ("32dbcf59-015e-1a4a-8b5a-0584321778a4", None),
        "snapshots/s1": ("bd23422d-7aaf-7440-9d59-4f2ddde1641d",
                         "32dbcf59-015e-1a4a-8b5a-0584321778a4")}


def test_the_storage_listing_refuses_another_host(tmp_path: Path) -> None:
    """A worker on the wrong queue must not answer for another host (nothing read)."""
    s = Settings(home=tmp_path, host="unused", storage_host="nas1")
    acts = StorageActivities(s, GaneshaExports(s))
    with pytest.raises(ApplicationError) as exc:
        ActivityEnvironment().run(acts.list_shares, HostRef("nas2"))
    assert exc.value.type == Errors.INVALID_STATE and exc.value.non_retryable
    assert "storage host nas1, not nas2" in str(exc.value)


# ---- live: access rules left in flight ---------------------------------------------

def in_flight(changed: datetime = OLD, status: str = "available", host: str | None = H,
              access_running: tuple[str, ...] = ()) -> StorageFacts:
    f = facts(shares={A: HOUR}, exports={A: HOUR}, ledger=share_rows(A),
              rows=[share(A, status, host)])
    return replace(f, rules_in_flight={A: changed}, access_running=frozenset(access_running))


def test_rules_in_flight_with_no_access_sync_running_are_signalled_again() -> None:
    j = classify(in_flight())
    [resync] = j.resync
    assert resync.share_id == A and "3600s" in resync.why
    assert j.asked_access == {A}
    assert (j.remove, j.forget, j.reported, j.deferred) == ([], [], [], [])


def test_rules_in_flight_are_left_to_a_running_access_sync() -> None:
    j = classify(in_flight(access_running=(A,)))
    assert j.resync == [] and j.asked_access == {A}


def test_rules_changed_within_the_grace_are_left_alone() -> None:
    j = classify(in_flight(changed=NOW - timedelta(seconds=30)))
    assert j.resync == [] and j.asked_access == set()


def test_rules_of_a_share_not_available_or_not_here_are_left_alone() -> None:
    for f in (in_flight(status="deleting"), in_flight(status="extending"),
              in_flight(host="nas2")):
        assert classify(f).resync == []
    no_row = replace(facts(shares={A: HOUR}, exports={A: HOUR}),
                     rules_in_flight={A: OLD})
    assert classify(no_row).resync == []
