"""The logic the routers call: guards, starting and ending operations, per-resource rules."""
