"""GET /metrics (vmflow.metrics): requests by route template and code, operations by
type and outcome as their rows end, task queue backlogs from Temporal."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from activities.control.instances import ControlActivities
from tests.api.conftest import World, create_server, operations_of
from vmflow import metrics, settings
from vmflow.contracts.instances import FinishOperation

Labels = tuple[tuple[str, str], ...]


async def scrape(api: httpx.AsyncClient) -> dict[str, dict[Labels, float]]:
    """sample name -> {sorted labels: value}"""
    r = await api.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: dict[str, dict[Labels, float]], name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


async def test_a_request_is_counted_and_timed_by_its_route_template(
        api: httpx.AsyncClient, world: World) -> None:
    missing = str(uuid.uuid4())
    route = {"method": "GET", "route": "/v1/servers/{server_id}", "code": "404"}
    before = await scrape(api)
    r = await api.get(f"/v1/servers/{missing}", headers=world.alice.h)
    assert r.status_code == 404
    after = await scrape(api)
    assert value(after, "vmflow_http_requests_total", **route) == \
        value(before, "vmflow_http_requests_total", **route) + 1
    assert value(after, "vmflow_http_request_duration_seconds_count", **route) == \
        value(before, "vmflow_http_request_duration_seconds_count", **route) + 1
    assert value(after, "vmflow_http_request_duration_seconds_bucket", le="+Inf", **route) >= 1
    # no raw path, so no id, ever reaches a label
    assert not any(missing in str(labels) for series in after.values() for labels in series)


async def test_a_facade_request_is_labelled_with_its_mount_and_an_unknown_path_once(
        api: httpx.AsyncClient, world: World) -> None:
    facade = {"method": "GET", "route": "/compute/v2.1/servers/{server_id}", "code": "404"}
    unmatched = {"method": "GET", "route": metrics.UNMATCHED, "code": "404"}
    before = await scrape(api)
    r = await api.get(f"/compute/v2.1/servers/{uuid.uuid4()}", headers=world.alice.h)
    assert r.status_code == 404
    assert (await api.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
    after = await scrape(api)
    for labels in (facade, unmatched):
        assert value(after, "vmflow_http_requests_total", **labels) == \
            value(before, "vmflow_http_requests_total", **labels) + 1, labels


async def test_an_operation_ending_shows_up_by_type_and_outcome(
        api: httpx.AsyncClient, world: World, temporal: Client,
        vmflow_home: settings.Settings) -> None:
    server = await create_server(api, world.alice, name="metrics-ends")
    (op,) = operations_of(server["server"]["id"])
    failed = {"resource_type": "instance", "type": op.action, "outcome": "failed"}
    before = await scrape(api)
    # the control worker's own finish step (no worker runs in this tier: called directly)
    ControlActivities(vmflow_home, temporal).finish_operation(
        FinishOperation(op.id, "failed", "the test ended it"))
    after = await scrape(api)
    name = "vmflow_operation_duration_seconds_count"
    assert value(after, name, **failed) == value(before, name, **failed) + 1
    again = await scrape(api)  # observed once, not at every scrape
    assert value(again, name, **failed) == value(after, name, **failed)


async def test_the_control_queue_backlog_comes_from_temporal(
        api: httpx.AsyncClient, world: World) -> None:
    """No worker polls `control` in this tier: the launch's workflow task waits there."""
    await create_server(api, world.alice, name="metrics-backlog")
    backlog = {"queue": "control", "kind": "workflow"}
    for _ in range(40):  # Temporal's count is approximate and refreshed as it goes
        metrics.BACKLOG.asked_at = -float("inf")  # past the scrape cache
        if value(await scrape(api), "vmflow_task_queue_backlog", **backlog) >= 1:
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("no backlog reported for the control queue")
