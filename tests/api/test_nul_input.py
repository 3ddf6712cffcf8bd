"""A NUL character in a request's value: PostgreSQL cannot hold or compare one in text
(SQLite can), which must read as bad input (400), never as a 500."""

from __future__ import annotations

import httpx

from tests.api.conftest import World, counts
from tests.conftest import TEST_DATABASE


async def test_a_nul_in_a_filter_is_bad_input_on_postgresql_and_matches_nothing_on_sqlite(
        api: httpx.AsyncClient, world: World) -> None:
    before = counts()
    r = await api.get("/v1/operations", headers=world.alice.h,
                      params={"resource_id": "x\x00y", "status": "failed"})
    if TEST_DATABASE == "postgresql":
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "InvalidInput"
    else:
        assert r.status_code == 200 and r.json()["operations"] == [], r.text
    assert counts() == before
