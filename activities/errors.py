"""The one way activities say "retrying cannot fix this": a typed, non-retryable
ApplicationError the workflows list in their retry policy (vmflow.contracts.errors.Errors)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from vmflow.contracts.errors import Errors

# a host's disk refuses: retrying the same step will not make room or grant access
PERMANENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EROFS, errno.ENOSPC,
                    errno.EDQUOT}


def permanent(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@contextmanager
def storage_errors() -> Iterator[None]:
    """OSErrors of the host's storage that retrying cannot fix become HostStorageError."""
    try:
        yield
    except OSError as e:
        if e.errno in PERMANENT_ERRNOS:
            raise permanent(f"host storage error: {e}", Errors.HOST_STORAGE) from e
        raise
