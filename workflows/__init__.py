"""Workflows: one module per operation; deterministic, no I/O.

instance/ and share/ hold one module per user-facing operation, background/ the
reconcilers, schedules, timers and host registration, _base/ the frames they share
(saga, steps, the action frame). registry.py lists every workflow class."""
