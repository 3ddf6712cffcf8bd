"""Every workflow whose input names an Operation row finishes that row on every way
out: through the action frame (InstanceAction.run_action) or the safety net on its
run (workflows/_base/operation.py @owns_operation)."""

from __future__ import annotations

import dataclasses
import typing

from workflows._base.action import InstanceAction
from workflows.registry import ALL

# inputs that name another workflow's operation, not one of their own
NOT_OWNERS = {"AutoUnrescue"}


def owners() -> list[type]:
    found = []
    for cls in ALL:
        hints = typing.get_type_hints(cls.run)
        arg = next(v for k, v in hints.items() if k != "return")
        fields = {f.name for f in dataclasses.fields(arg)} if dataclasses.is_dataclass(arg) \
            else set()
        if "operation_id" in fields and cls.__name__ not in NOT_OWNERS:
            found.append(cls)
    return found


def test_every_owner_finishes_its_row() -> None:
    assert len(owners()) >= 15
    unguarded = [cls.__name__ for cls in owners()
                 if not issubclass(cls, InstanceAction)
                 and getattr(cls.run, "__wrapped__", None) is None]
    assert unguarded == []


def test_the_net_is_really_on_a_share_workflow() -> None:
    from workflows.share.delete import DeleteShare

    assert getattr(DeleteShare.run, "__wrapped__", None) is not None
