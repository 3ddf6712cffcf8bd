"""allow_access / deny_access over the real app and Temporal dev server: validation
(400, no row, no workflow), duplicates, rule states, and the access reconcile started
with signal-with-start so concurrent requests queue on one run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from tests.api.conftest import World, session
from tests.api.test_auth import assert_error
from tests.api.test_shares import act, add_share, share_counts, share_row, status_of
from vmflow.models import ShareAccessRule


def allow(access_type: str, access_to: Any, level: Any = "rw") -> dict[str, Any]:
    return {"allow_access": {"access_type": access_type, "access_to": access_to,
                             "access_level": level}}


def rules_of(share_id: str) -> list[ShareAccessRule]:
    with session() as s:
        return list(s.exec(select(ShareAccessRule).where(ShareAccessRule.share_id == share_id)))


async def signals(temporal: Client, workflow_id: str) -> list[str]:
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    return [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]


# the bad values, and a few more
BAD = [
    ("ip", "10.0.0.1/24"), ("ip", "2001:db8::1/64"), ("ip", "garbage"),
    ("ip", "10.0.0.1(rw,no_root_squash)"), ("ip", "10.0.0.1 "), ("ip", "10.0.0.1\n"),
    ("ip", "10.0.0.1,10.0.0.2"), ("ip", "*"), ("ip", ""), ("ip", "10.0.0.256"),
    ("user", "bob"), ("user", "a" * 256), ("user", "x(rw)"), ("user", "two words"),
    ("cert", "c" * 65), ("cert", ""), ("cert", "a\nb"),
    ("nfs", "10.0.0.1"), ("IP", "10.0.0.1"),
]


@pytest.mark.parametrize("access_type,access_to", BAD)
async def test_bad_access_to_is_400_and_changes_nothing(
        api: httpx.AsyncClient, world: World, temporal: Client, access_type: str,
        access_to: str) -> None:
    share = add_share(world.alice)
    before = share_counts()
    err = assert_error(await act(api, world.alice, share.id, allow(access_type, access_to)),
                       400, "InvalidShareAccess")
    assert "access" in err["message"]
    assert share_counts() == before and rules_of(share.id) == []
    assert (share_row(share.id) or share).access_rules_status == "active"
    assert await status_of(temporal, f"share-{share.id}-access") is None


@pytest.mark.parametrize("body", [
    allow("ip", "10.0.0.1", "rx"), allow("ip", 167772161), allow("ip", "10.0.0.1", None),
    {"allow_access": {"access_type": "ip"}},
    {"allow_access": {"access_type": "ip", "access_to": "10.0.0.1", "extra": "x"}},
    {"allow_access": "10.0.0.1"},
])
async def test_malformed_allow_is_400(api: httpx.AsyncClient, world: World, temporal: Client,
                                      body: dict[str, Any]) -> None:
    share = add_share(world.alice)
    assert (await act(api, world.alice, share.id, body)).status_code == 400
    assert rules_of(share.id) == []
    assert await status_of(temporal, f"share-{share.id}-access") is None


async def test_allow_queues_the_rule_and_signals_one_reconcile(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    share = add_share(world.alice)
    r = await act(api, world.alice, share.id, allow("ip", "10.254.0.4/32"))
    assert r.status_code == 200, r.text
    first = r.json()["access"]
    assert (first["access_type"], first["access_to"], first["access_level"],
            first["state"]) == ("ip", "10.254.0.4", "rw", "queued_to_apply")
    assert (share_row(share.id) or share).access_rules_status == "syncing"
    wid = f"share-{share.id}-access"
    desc = await temporal.get_workflow_handle(wid).describe()
    assert (desc.workflow_type, desc.status) == ("SyncShareAccess",
                                                WorkflowExecutionStatus.RUNNING)
    assert await signals(temporal, wid) == ["rules_changed"]

    # a second request reaches the same run (signal-with-start, not a second start)
    r = await act(api, world.carol, share.id, allow("ip", "10.254.0.5", "ro"))
    assert r.status_code == 200, r.text
    assert (await temporal.get_workflow_handle(wid).describe()).run_id == desc.run_id
    assert await signals(temporal, wid) == ["rules_changed", "rules_changed"]

    # the same address again (however written) is a duplicate, a user rule is not
    before = share_counts()
    for to in ("10.254.0.4", "10.254.0.4/32"):
        assert_error(await act(api, world.alice, share.id, allow("ip", to)), 400,
                     "ShareAccessExists")
    assert share_counts() == before
    r = await act(api, world.alice, share.id, allow("user", "alice_nfs"))
    assert r.status_code == 200, r.text

    listed = (await api.get(f"/v1/shares/{share.id}/access-rules",
                            headers=world.rita.h)).json()["access_list"]
    assert [(x["access_to"], x["access_level"], x["state"]) for x in listed] == [
        ("10.254.0.4", "rw", "queued_to_apply"), ("10.254.0.5", "ro", "queued_to_apply"),
        ("alice_nfs", "rw", "queued_to_apply")]
    await temporal.get_workflow_handle(wid).terminate(reason="test")


async def test_deny(api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    share = add_share(world.alice)
    active = ShareAccessRule(share_id=share.id, access_type="ip", access_to="10.254.0.4",
                             access_level="rw", state="active")
    gone = ShareAccessRule(share_id=share.id, access_type="ip", access_to="10.254.0.6",
                           access_level="rw", state="deleted")
    other = add_share(world.alice, name="other")
    foreign = ShareAccessRule(share_id=other.id, access_type="ip", access_to="10.254.0.7",
                              access_level="rw", state="active")
    with session() as s:
        s.add_all([active, gone, foreign])
        s.commit()
    for rid in ("nope", gone.id, foreign.id):  # unknown, deleted, another share's rule
        assert_error(await act(api, world.alice, share.id, {"deny_access": {"access_id": rid}}),
                     404)
    assert await status_of(temporal, f"share-{share.id}-access") is None

    r = await act(api, world.alice, share.id, {"deny_access": {"access_id": active.id}})
    assert r.status_code == 202, r.text
    assert r.json()["access"]["state"] == "queued_to_deny"
    assert (share_row(share.id) or share).access_rules_status == "syncing"
    assert await signals(temporal, f"share-{share.id}-access") == ["rules_changed"]
    err = assert_error(await act(api, world.alice, share.id,
                                 {"deny_access": {"access_id": active.id}}), 400,
                       "InvalidShareAccess")
    assert "already being denied" in err["message"]
    # a deleted rule's address may be allowed again; the denied one's not until it is gone
    assert (await act(api, world.alice, share.id, allow("ip", "10.254.0.6"))).status_code == 200
    assert_error(await act(api, world.alice, share.id, allow("ip", "10.254.0.4")), 400,
                 "ShareAccessExists")
    listed = (await api.get(f"/v1/shares/{share.id}/access-rules",
                            headers=world.alice.h)).json()["access_list"]
    assert sorted((x["access_to"], x["state"]) for x in listed) == [
        ("10.254.0.4", "queued_to_deny"), ("10.254.0.6", "queued_to_apply")]
    await temporal.get_workflow_handle(f"share-{share.id}-access").terminate(reason="test")


async def test_idempotent_allow(api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    share = add_share(world.alice)
    h = {**world.alice.h, "Idempotency-Key": "allow-once"}
    bodies = []
    for _ in range(2):
        r = await api.post(f"/v1/shares/{share.id}/action", headers=h,
                           json=allow("ip", "10.1.2.3"))
        assert r.status_code == 200, r.text
        bodies.append(r.json()["access"]["id"])
    assert bodies[0] == bodies[1] and len(rules_of(share.id)) == 1
    await temporal.get_workflow_handle(f"share-{share.id}-access").terminate(reason="test")
