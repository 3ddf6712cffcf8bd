"""Workflows nobody asks for by hand: reconcilers, scheduled backups, timers, host registration."""
