"""Microversions as Nova and Manila negotiate them: the request names one in
`OpenStack-API-Version: <service> X.Y` or in the service's legacy header (Tempest and
the manila CLI send only that one); none means the minimum, `latest` the maximum.
Every response echoes the version served in both headers, with Vary."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.openstack.common import Render

VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        m = VERSION.match(text.strip())
        if m is None:
            raise ValueError(f"Invalid API version request: {text!r}")
        return cls(int(m[1]), int(m[2]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Microversions:
    service: str  # the name in OpenStack-API-Version: "compute", "shared-file-system"
    legacy_header: str  # "X-OpenStack-Nova-API-Version", "X-OpenStack-Manila-API-Version"
    minimum: Version
    maximum: Version

    def requested(self, request: Request) -> str | None:
        for value in request.headers.getlist("openstack-api-version"):
            for part in value.split(","):
                name, _, version = part.strip().partition(" ")
                if name.lower() == self.service:
                    return version.strip()
        return request.headers.get(self.legacy_header)

    def negotiate(self, text: str | None) -> Version:
        """The version to serve; ValueError (400) for a malformed one, LookupError
        (406) for one outside the range."""
        if text is None or not text.strip():
            return self.minimum
        if text.strip().lower() == "latest":
            return self.maximum
        v = Version.parse(text)
        if not self.minimum <= v <= self.maximum:
            raise LookupError(f"Version {v} is not supported by the API. Minimum is "
                              f"{self.minimum} and maximum is {self.maximum}.")
        return v

    def install(self, app: FastAPI, render: Render) -> None:
        """Negotiate on every request (request.state.microversion) and echo it."""
        @app.middleware("http")
        async def microversion(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            if _below_root(request) in ("", "/"):  # the versions document: what ranges
                request.state.microversion = self.minimum  # exist, whatever is asked
                return await call_next(request)
            try:
                version = self.negotiate(self.requested(request))
            except ValueError as e:
                response: Response = JSONResponse(render(400, str(e)), status_code=400)
            except LookupError as e:
                response = JSONResponse(render(406, str(e)), status_code=406)
            else:
                request.state.microversion = version
                response = await call_next(request)
                response.headers["OpenStack-API-Version"] = f"{self.service} {version}"
                response.headers[self.legacy_header] = str(version)
            response.headers["Vary"] = f"OpenStack-API-Version, {self.legacy_header}"
            return response


def _below_root(request: Request) -> str:
    """The path inside the sub-application (a mount keeps the full path in scope)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def microversion_of(request: Request) -> Version:
    version: Version = request.state.microversion
    return version


MicroversionDep = Annotated[Version, Depends(microversion_of)]
