"""The image store's judgement (activities/control/image_store_orphans.py), one rule at a
time: interrupted uploads go back to queued, a snapshot image whose operation ended
goes to error, files no image uses go, an active image without data is reported,
and anything younger than the grace or owned by a running operation is left."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from activities.control.image_store_orphans import ImageRow, StoreFacts, StoreFile, StorePlan, judge

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GRACE = 600.0
OLD_S = 3600.0
OLD = NOW - timedelta(seconds=OLD_S)
A, B, VM = (str(uuid.UUID(int=i)) for i in (1, 2, 9))


def upload(status: str, at: datetime = OLD, iid: str = A) -> ImageRow:
    return ImageRow(iid, status, at)


def snapshot(status: str, at: datetime = OLD, iid: str = A) -> ImageRow:
    return ImageRow(iid, status, at, "snapshot", VM)


def run(files: list[StoreFile], images: list[ImageRow], running: tuple[str, ...] = (),
        referenced: tuple[str, ...] = ()) -> StorePlan:
    return judge(StoreFacts(files, {i.id: i for i in images}, frozenset(running), NOW, GRACE,
                            frozenset(referenced)))


def removed(plan: StorePlan) -> set[tuple[str, str]]:
    return {(f.image_id, f.kind) for f in plan.remove}


def test_an_active_image_with_its_data_is_left_alone() -> None:
    plan = run([StoreFile(A, "data", OLD_S)], [replace(upload("active"), has_data=True)])
    assert (plan.remove, plan.requeue, plan.fail, plan.reported, plan.deferred) == (
        [], {}, {}, [], [])


def test_an_active_image_without_data_is_reported_not_changed() -> None:
    plan = run([], [upload("active")])
    assert len(plan.reported) == 1 and A in plan.reported[0]
    assert (plan.remove, plan.requeue, plan.fail) == ([], {}, {})


def test_an_upload_silent_for_longer_than_the_grace_goes_back_to_queued() -> None:
    plan = run([StoreFile(A, "part", OLD_S)], [upload("saving")])
    assert plan.requeue == {A: OLD}
    assert removed(plan) == {(A, "part")}
    assert plan.fail == {}


def test_an_upload_still_writing_its_part_file_is_deferred() -> None:
    plan = run([StoreFile(A, "part", 5.0)], [upload("saving")])
    assert plan.requeue == {} and plan.remove == []
    assert len(plan.deferred) == 1


def test_an_upload_that_died_after_renaming_its_data_loses_the_data_file() -> None:
    """The API renamed <id>.part to <id> and died before the row said active."""
    plan = run([StoreFile(A, "data", OLD_S)], [upload("saving")])
    assert plan.requeue == {A: OLD}
    assert removed(plan) == {(A, "data")}


def test_a_queued_upload_image_waits_for_its_owner_forever() -> None:
    plan = run([], [upload("queued", at=NOW - timedelta(days=30))])
    assert (plan.remove, plan.requeue, plan.fail, plan.reported, plan.deferred) == (
        [], {}, {}, [], [])


def test_a_snapshot_image_of_a_running_operation_is_left_to_it() -> None:
    files = [StoreFile(A, "staged", OLD_S)]
    for status in ("queued", "saving"):
        plan = run(files, [snapshot(status)], running=(VM,))
        assert (plan.remove, plan.requeue, plan.fail) == ([], {}, {})
        assert len(plan.deferred) == 1 and VM in plan.deferred[0]


def test_a_snapshot_image_whose_operation_ended_goes_to_error_with_the_reason() -> None:
    files = [StoreFile(A, "staged", OLD_S), StoreFile(A, "part", OLD_S)]
    for status in ("queued", "saving"):
        plan = run(files, [snapshot(status)])
        assert list(plan.fail) == [A]
        seen, why = plan.fail[A]
        assert seen == OLD and VM in why and status in why
        assert removed(plan) == {(A, "staged"), (A, "part")}
        assert plan.requeue == {}


def test_a_young_snapshot_image_with_no_operation_is_deferred() -> None:
    plan = run([StoreFile(A, "staged", 30.0)], [snapshot("queued", at=NOW)])
    assert (plan.remove, plan.fail) == ([], {})
    assert len(plan.deferred) == 1


def test_a_backup_image_is_owned_like_a_snapshot() -> None:
    row = ImageRow(A, "queued", OLD, "backup", VM)
    assert list(run([], [row]).fail) == [A]
    assert run([], [row], running=(VM,)).fail == {}


def test_files_no_image_uses_go_once_older_than_the_grace() -> None:
    files = [StoreFile(A, "data", OLD_S), StoreFile(A, "part", OLD_S),
             StoreFile(A, "staged", OLD_S), StoreFile(B, "data", OLD_S)]
    plan = run(files, [upload("deleted")])  # B has no row at all
    assert removed(plan) == {(A, "data"), (A, "part"), (A, "staged"), (B, "data")}
    assert any("unknown to the database" in why for why in plan.why.values())


def test_each_kind_of_file_is_kept_in_the_states_that_use_it() -> None:
    active = run([StoreFile(A, "data", OLD_S), StoreFile(A, "part", OLD_S),
                  StoreFile(A, "staged", OLD_S)], [replace(upload("active"), has_data=True)])
    assert removed(active) == {(A, "part"), (A, "staged")}
    assert active.reported == []
    error = run([StoreFile(A, "data", OLD_S)], [upload("error")])
    assert removed(error) == {(A, "data")}


def test_a_data_file_another_active_image_points_at_is_kept() -> None:
    """Two images made from the same data share one file (location)."""
    plan = run([StoreFile(B, "data", OLD_S)], [replace(upload("active"), has_data=True)],
               referenced=(B,))
    assert plan.remove == []


def test_a_young_orphan_file_is_deferred() -> None:
    plan = run([StoreFile(B, "data", 10.0)], [])
    assert plan.remove == [] and len(plan.deferred) == 1
