"""Activities, grouped by the worker that runs them: control/, hypervisor/, storage/
(errors.py and heartbeat.py are shared)."""
