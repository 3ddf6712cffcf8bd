"""Workflows: one module per operation; deterministic, no I/O."""

from workflows.delete import DeleteInstance
from workflows.launch import LaunchInstance
from workflows.register_host import RegisterHost

ALL = [LaunchInstance, DeleteInstance, RegisterHost]
