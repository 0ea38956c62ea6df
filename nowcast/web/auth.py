"""HTTP Basic authentication for the dashboard, when ``web: password file`` is set.

A browser asks once and then sends the credentials with every request, the
live-update stream included. Scripts may send ``Authorization: Bearer PASSWORD``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any


class PasswordMiddleware:
    """An ASGI middleware answering 401 to any HTTP request without the password."""

    def __init__(self, app: Any, user: str, password: str) -> None:
        self.app = app
        self._basic = f"{user}:{password}".encode()
        self._bearer = password.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        body = b"401 Unauthorized: this nowcast dashboard needs its user name and password\n"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", b'Basic realm="nowcast", charset="UTF-8"'),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def allowed(self, scope: dict) -> bool:
        for name, value in scope.get("headers", ()):
            if name != b"authorization":
                continue
            kind, _, credentials = value.partition(b" ")
            kind = kind.lower()
            if kind == b"basic":
                try:
                    given = base64.b64decode(credentials.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                return hmac.compare_digest(given, self._basic)
            if kind == b"bearer":
                return hmac.compare_digest(credentials.strip(), self._bearer)
            return False
        return False
