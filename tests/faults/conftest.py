"""The fault tier: kill -9 of workers in the middle of operations, on its own stack."""

from tests.integration.conftest import api, it_settings  # noqa: F401  (shared fixtures)
