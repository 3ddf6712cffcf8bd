"""The Temporal client, configured the same way for every process."""

from __future__ import annotations

from temporalio.client import Client

from vmflow.settings import Settings, get_settings


async def connect(settings: Settings | None = None) -> Client:
    s = settings or get_settings()
    return await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
