"""Workflow and activity contracts: frozen dataclasses from the standard library only,
one in and one out."""
