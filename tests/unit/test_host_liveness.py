"""The judgement of a host's heartbeat (vmflow.host_liveness), pure parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vmflow.host_liveness import beat_period, fresh, state
from vmflow.settings import Settings

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_down_after_the_configured_time() -> None:
    assert fresh(NOW - timedelta(seconds=59), 60, NOW)
    assert not fresh(NOW - timedelta(seconds=60), 60, NOW)
    assert fresh(NOW - timedelta(seconds=9), 10, NOW)
    assert not fresh(NOW - timedelta(seconds=11), 10, NOW)
    assert not fresh(None, 60, NOW)  # never seen


def test_forced_down_overrides_the_heartbeat() -> None:
    assert (state(True, False), state(True, True), state(False, False)) == ("up", "down", "down")


def test_beats_come_three_times_per_down_after_time_within_bounds() -> None:
    assert beat_period(60) == 20 and beat_period(30) == 10
    assert beat_period(3) == 3 and beat_period(600) == 20


def test_the_default_is_60_seconds_and_the_environment_sets_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().host_down_after == 60
    monkeypatch.setenv("VMFLOW_HOST_DOWN_AFTER", "15")
    assert Settings().host_down_after == 15
