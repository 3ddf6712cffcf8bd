"""Unauthenticated probes."""

from __future__ import annotations

import httpx

from tests.api.conftest import World, create_server


async def test_healthz_reports_db_and_temporal(api: httpx.AsyncClient) -> None:
    r = await api.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": True, "temporal": True}


async def test_metrics_count_instances_and_running_operations(api: httpx.AsyncClient,
                                                              world: World) -> None:
    await create_server(api, world.alice, name="metrics-vm")
    r = await api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = int(value)
    assert samples['vmflow_instances{vm_state="building"}'] >= 1
    assert samples["vmflow_operations_running"] >= 1
    assert samples['vmflow_operations{status="running"}'] == samples["vmflow_operations_running"]
    assert "# TYPE vmflow_operations_running gauge" in r.text
