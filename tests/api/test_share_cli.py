"""`vmflow share ...` against the real API test app: the CLI runs in a thread, its
synchronous HTTP client bridged onto the app on the test's event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client

from tests.api.conftest import Caller, World, make_caller, session
from tests.api.test_shares import add_share, end
from vmflow import cli
from vmflow.cli import common
from vmflow.models import ShareAccessRule


class Bridge(httpx.BaseTransport):
    """A sync transport that hands each request to the async test client."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop):
        self.client, self.loop = client, loop
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                  content=request.read())
        r = asyncio.run_coroutine_threadsafe(self.client.send(forwarded), self.loop).result(60)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


@pytest.fixture(scope="module")
async def pcli(api: httpx.AsyncClient, world: World) -> tuple[Caller, Caller]:
    """A member and a reader of a project of their own: other modules' share rows do
    not count against its quota."""
    r = await api.post("/v1/projects", headers=world.admin.h, json={"name": "pcli"})
    assert r.status_code == 201, r.text
    return (await make_caller(api, world.admin.h, "cleo", "pcli", "member"),
            await make_caller(api, world.admin.h, "rory", "pcli", "reader"))


@pytest.fixture
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(common, "POLL_S", 0.05)
    yield


async def vmflow(api: httpx.AsyncClient, who: Caller, *args: str) -> tuple[int, Bridge]:
    bridge = Bridge(api, asyncio.get_running_loop())
    common.state = common.State(url="http://vmflow", token=who.token, transport=bridge)
    try:
        return await asyncio.to_thread(cli.run, list(args)), bridge
    finally:
        common.state = common.State()


@pytest.mark.parametrize("args", [
    ["share", "create", "x"],  # neither --size nor --snapshot
    ["share", "create", "x", "--size", "0"],
    ["share", "extend", "x", "0"],
    ["share", "extend", "x", "big"],
    ["share", "access-allow", "x", "nfs", "10.0.0.1"],
    ["share", "access-allow", "x", "ip", "10.0.0.1", "--level", "rx"],
    ["share", "access-deny", "x"],
])
async def test_usage_errors_exit_2_without_a_request(api: httpx.AsyncClient, world: World,
                                                     fast_poll: None, args: list[str]) -> None:
    code, bridge = await vmflow(api, world.alice, *args)
    assert code == 2 and bridge.seen == []


async def test_create_show_allow_list(api: httpx.AsyncClient, world: World, temporal: Client,
                                      fast_poll: None, pcli: tuple[Caller, Caller],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cleo, rory = pcli
    code, bridge = await vmflow(api, cleo, "share", "create", "cli-share", "--size", "1",
                                "--json")
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    sid = created["share"]["id"]
    assert (created["share"]["status"], created["operation"]["workflow_id"]) == (
        "creating", f"share-{sid}")
    assert json.loads(bridge.seen[0].content) == {"share_proto": "NFS", "name": "cli-share",
                                                  "size": 1}
    await end(temporal, sid)

    code, bridge = await vmflow(api, cleo, "share", "show", "cli-share")
    assert code == 0 and sid in capsys.readouterr().out
    assert [r.url.path for r in bridge.seen] == ["/v1/shares", f"/v1/shares/{sid}"]

    # the API's 400 reaches the user as the message, exit 1 (the share is still creating:
    # 409 first; a share that is available gets as far as validation)
    ready = add_share(cleo, name="cli-ready")
    code, _ = await vmflow(api, cleo, "share", "access-allow", ready.id, "ip",
                           "10.0.0.1/24")
    assert code == 1 and "the network would be 10.0.0.0/24" in capsys.readouterr().err
    code, _ = await vmflow(api, cleo, "share", "access-allow", "cli-ready", "ip",
                           "10.0.0.7", "--level", "ro", "--json")
    assert code == 0
    rule = json.loads(capsys.readouterr().out)
    assert (rule["access_to"], rule["access_level"], rule["state"]) == (
        "10.0.0.7", "ro", "queued_to_apply")
    code, _ = await vmflow(api, rory, "share", "access-list", "cli-ready", "--json")
    assert code == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [rule["id"]]
    code, _ = await vmflow(api, cleo, "share", "quota-show", "--json")
    assert code == 0
    quota = json.loads(capsys.readouterr().out)["quota_set"]
    assert quota["id"] == cleo.project_id and quota["shares"]["in_use"] >= 2
    code, _ = await vmflow(api, cleo, "share", "type-list")
    assert code == 0 and "snapshot_support=True" in capsys.readouterr().out
    await temporal.get_workflow_handle(f"share-{ready.id}-access").terminate(reason="test")


@pytest.mark.parametrize("final,code", [("active", 0), ("error", 1)])
async def test_access_allow_wait_follows_the_rule(api: httpx.AsyncClient, world: World,
                                                  temporal: Client, fast_poll: None,
                                                  capsys: pytest.CaptureFixture[str],
                                                  final: str, code: int) -> None:
    """--wait polls the rule until it leaves queued/applying; the reconcile's part (no
    worker runs here) is played by writing the rule's state."""
    share = add_share(world.alice, name=f"cli-wait-{final}")
    run = asyncio.create_task(vmflow(api, world.alice, "share", "access-allow", share.id, "ip",
                                     "10.0.0.8", "--wait"))
    for state in ("applying", final):
        rule = None
        for _ in range(200):
            await asyncio.sleep(0.05)
            with session() as s:
                rule = s.exec(select(ShareAccessRule).where(
                    ShareAccessRule.share_id == share.id)).first()
                if rule is not None:
                    assert not run.done()  # still waiting while queued or applying
                    rule.state = state
                    rule.fault = "cert is not enforced" if state == "error" else None
                    s.add(rule)
                    s.commit()
                    break
        assert rule is not None
        await asyncio.sleep(0.3)
    exit_code, _ = await asyncio.wait_for(run, 30)
    assert exit_code == code
    assert final in capsys.readouterr().out
    await temporal.get_workflow_handle(f"share-{share.id}-access").terminate(reason="test")
