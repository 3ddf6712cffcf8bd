"""The error types activities raise that retrying cannot fix; workflows list them as
non-retryable."""

from __future__ import annotations


class Errors:
    """ApplicationError types that retrying cannot fix (non-retryable everywhere)."""

    NO_VALID_HOST = "NoValidHost"
    NO_CAPACITY = "NoCapacity"
    IMAGE_INVALID = "ImageInvalid"
    INVALID_STATE = "InvalidState"
    NOT_FOUND = "NotFound"
    HOST_STORAGE = "HostStorageError"  # permission denied, no space, read-only: retry won't fix
    GUEST_BOOT = "GuestBootFailed"  # stopped while booting, or no agent before the deadline
    ALL = [NO_VALID_HOST, NO_CAPACITY, IMAGE_INVALID, INVALID_STATE, NOT_FOUND, HOST_STORAGE,
           GUEST_BOOT]
