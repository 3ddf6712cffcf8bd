"""`python -m api`: serve the API on settings.api_host:settings.api_port."""

from __future__ import annotations

import uvicorn

from vmflow.settings import get_settings


def main() -> None:
    s = get_settings()
    uvicorn.run("api.app:app", host=s.api_host, port=s.api_port, log_level="info")


if __name__ == "__main__":
    main()
