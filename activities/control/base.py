"""The bases of the control plane's database activities: the settings and a short
session on the configured engine for each call; for some, the Temporal client too."""

from __future__ import annotations

from sqlmodel import Session
from temporalio.client import Client

from vmflow import db
from vmflow.settings import Settings


class DbActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    def session(self) -> Session:
        return Session(db.engine_for(self.settings.db_url), expire_on_commit=False)


class ClientActivities(DbActivities):
    """Database activities that also ask Temporal (describe, start, signal)."""

    def __init__(self, settings: Settings, client: Client):
        super().__init__(settings)
        self.client = client
