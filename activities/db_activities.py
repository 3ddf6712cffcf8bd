"""The base of the control plane's database activities: the settings, and a short
session on the configured engine for each call."""

from __future__ import annotations

from sqlmodel import Session

from vmflow import db
from vmflow.settings import Settings


class DbActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    def session(self) -> Session:
        return Session(db.engine_for(self.settings.db_url), expire_on_commit=False)
