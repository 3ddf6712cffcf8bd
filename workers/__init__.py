"""The worker processes: control (every workflow and the database steps), hypervisor
(one per host), storage (one per storage host)."""
