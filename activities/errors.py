"""The one way activities say "retrying cannot fix this": a typed, non-retryable
ApplicationError the workflows list in their retry policy (vmflow.contracts.Errors)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def permanent(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)
