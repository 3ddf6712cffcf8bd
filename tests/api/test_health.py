"""Unauthenticated probes."""

from __future__ import annotations

import asyncio
import gc
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.conftest import World, create_server
from vmflow import settings
from vmflow.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_healthz_reports_db_and_temporal(api: httpx.AsyncClient) -> None:
    r = await api.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": True, "temporal": True}


async def test_start_up_heap_is_frozen_out_of_the_collector(api: httpx.AsyncClient) -> None:
    """The lifespan freezes what start-up made, so a full collection (~100 ms over the
    app's ~200k objects) no longer lands in the middle of a request."""
    assert (await api.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() > 50_000


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
            samples[name] = int(float(value))  # prometheus_client writes 2.0
    assert samples['vmflow_instances{vm_state="building"}'] >= 1
    assert samples["vmflow_operations_running"] >= 1
    assert samples['vmflow_operations{status="running"}'] == samples["vmflow_operations_running"]
    assert "# TYPE vmflow_operations_running gauge" in r.text


async def test_python_m_api_serves(vmflow_home: settings.Settings) -> None:
    """The entry point `make up` runs: uvicorn on VMFLOW_API_HOST:VMFLOW_API_PORT."""
    port = free_port()
    env = {**os.environ, "VMFLOW_API_HOST": "127.0.0.1", "VMFLOW_API_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "api"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            while True:
                try:
                    r = await c.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline, "python -m api did not come up"
                    await asyncio.sleep(0.2)
        assert r.json() == {"status": "ok", "db": True, "temporal": True}
        # a connection left idle for longer than the OpenStack clients' 5 s --wait poll is
        # still open: the next request on it is answered, not met by the server closing it
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for pause in (6, 0):
                conn.request("GET", "/healthz")  # a closed connection: RemoteDisconnected
                answer = conn.getresponse()
                assert answer.status == 200 and answer.read()
                time.sleep(pause)
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
