"""`python -m api`: serve the API on settings.api_host:settings.api_port."""

from __future__ import annotations

import uvicorn

from vmflow import logs
from vmflow.settings import get_settings

# Longer than any client's pause between requests on one connection: the OpenStack
# clients' --wait polls every 5 s, uvicorn's default keep-alive, so a poll could meet
# the server closing that very connection ("Remote end closed connection")
KEEP_ALIVE_S = 75


def main() -> None:
    s = get_settings()
    # JSON lines: uvicorn's loggers go to the root logger's handler instead of their own
    config = None if logs.setup(s) else uvicorn.config.LOGGING_CONFIG
    uvicorn.run("api.app:app", host=s.api_host, port=s.api_port, log_level="info",
                log_config=config, timeout_keep_alive=KEEP_ALIVE_S)


if __name__ == "__main__":
    main()
