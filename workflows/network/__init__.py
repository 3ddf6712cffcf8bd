"""Workflows of guest networks (issue 12): floating IPs."""
