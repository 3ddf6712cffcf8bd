"""Each worker's own metrics: the Temporal SDK's (task slots, poll and schedule-to-start
latencies, activity and workflow task outcomes), served in Prometheus text by the SDK's
runtime on VMFLOW_WORKER_METRICS_ADDRESS (host:port; empty: none).

The embedded stack gives each worker a port of its own (assign_port): the one it had
last time if still free, else a free one, recorded in `run/metrics-ports.json` so
`make status` can show it. docker-compose.yml fixes them instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from vmflow.settings import Settings

if TYPE_CHECKING:
    from temporalio.runtime import Runtime

    from vmflow.processes import Component

log = logging.getLogger("vmflow.worker")

PORTS_FILE = "metrics-ports.json"
ENV = "VMFLOW_WORKER_METRICS_ADDRESS"


def runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics, or None (the default runtime) when
    no address is set or it cannot be bound. One per process: the client and its
    workers share it."""
    if not settings.worker_metrics_address:
        return None
    # here, not at the top: `make status` imports this module and needs no runtime
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    try:
        return Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.worker_metrics_address,
                                     durations_as_seconds=True)))
    except ValueError as e:  # the port is taken: a worker without metrics still works
        log.error("no Temporal SDK metrics on %s: %s", settings.worker_metrics_address, e)
        return None


def _ports_file(s: Settings) -> Path:
    return s.run_dir / PORTS_FILE


def recorded_ports(s: Settings) -> dict[str, int]:
    """Component name -> the metrics port it was last started with."""
    try:
        data = json.loads(_ports_file(s).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assign_port(s: Settings, component: str) -> int:
    """The port `component` serves its metrics on: last time's if still free, else a
    new free one (not one another component of this home holds); recorded."""
    from vmflow.processes import free_port  # the stack's own port picker

    ports = recorded_ports(s)
    # the stack's own ports are chosen before anything binds them
    taken = {p for name, p in ports.items() if name != component} | {
        s.api_port, s.temporal_ui_port, s.temporal_port}
    port = ports.get(component)
    if port is None or port in taken or not _free(port):
        port = next(p for p in (free_port() for _ in range(20)) if p not in taken)
    ports[component] = port
    s.run_dir.mkdir(parents=True, exist_ok=True)
    _ports_file(s).write_text(json.dumps(ports, indent=1, sort_keys=True) + "\n")
    return port


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


def with_port(s: Settings, comp: Component) -> Component:
    """A component as the stack spawns it: a worker (`-m workers.<x>`) gets a metrics
    port of its own, so no two workers, nor two stacks, share one."""
    if not any(m.startswith("workers.") for m in comp.markers):
        return comp
    address = f"127.0.0.1:{assign_port(s, comp.name)}"
    return dataclasses.replace(comp, env=(*comp.env, (ENV, address)))
