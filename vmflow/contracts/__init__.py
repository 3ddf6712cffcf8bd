"""Workflow and activity contracts: frozen dataclasses from the standard library only,
one in and one out, and per task queue a typed activity stub (`*_stub.py`)."""
