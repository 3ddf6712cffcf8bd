"""Compensation kept in the workflow body: push an undo before each forward step;
on failure or cancellation run the undos newest first. Each undo is an idempotent
activity call, retried on its own, so one failing undo does not skip the others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

Undo = Callable[[], Awaitable[object]]


class Compensations:
    def __init__(self) -> None:
        self._undos: list[tuple[str, Undo]] = []

    def push(self, name: str, undo: Undo) -> None:
        self._undos.append((name, undo))

    async def run_one(self, name: str) -> None:
        """Undo one step now (e.g. release the claim on a host that never answered)."""
        for i in range(len(self._undos) - 1, -1, -1):
            if self._undos[i][0] == name:
                _, undo = self._undos.pop(i)
                await undo()
                return

    def clear(self) -> None:
        """A point of no return: what was done stays done (e.g. a shelve image once the
        disk it copies is about to go)."""
        self._undos.clear()

    async def run(self) -> list[str]:
        """Run every undo, newest first; return the names of the ones that failed."""
        failed = []
        while self._undos:
            name, undo = self._undos.pop()
            try:
                await undo()
            except Exception as err:  # keep undoing the rest; report it
                workflow.logger.error("compensation %s failed: %s", name, err)
                failed.append(name)
        return failed
