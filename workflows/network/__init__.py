"""Workflows of guest networks: security groups, floating IPs."""
