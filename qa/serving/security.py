"""What every request passes through: the optional API token (``QA_API_TOKEN``), the body size
limit, and the security headers (CSP, nosniff, no-referrer) of every response.

The token:

Scripts send ``Authorization: Bearer <token>``. The chat page signs in once
with the token and then carries a session cookie (HttpOnly, SameSite=Strict)
whose value is derived from the token, never the token itself. Both are
compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from qa.settings import Settings

COOKIE = "qa_session"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
# /docs and /redoc (fastapi-offline) start Swagger UI and ReDoc with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
DOCS_PATHS = ("/docs", "/redoc")


def session_value(token: str) -> str:
    """The cookie value for ``token``: changes when the token changes, does not reveal it."""
    return hmac.new(token.encode(), b"qa chat session", hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authorized(token: str | None, authorization: str | None, cookie: str | None) -> bool:
    """Whether a request may use the API: no token configured, a right bearer token, or a session."""
    if not token:
        return True
    if authorization and same(authorization, f"Bearer {token}"):
        return True
    return bool(cookie) and same(cookie, session_value(token))


def api_token(settings: Settings) -> str | None:
    return settings.api_token.get_secret_value() if settings.api_token else None


class BodyLimit:
    """ASGI middleware: refuses request bodies over ``max_bytes`` with 413, before anything parses them."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        response = JSONResponse(status_code=413, content={
            "detail": f"request body too large: at most {self.max_bytes} bytes are accepted"})
        await response({"type": "http"}, None, send)


class _TooLarge(Exception):
    pass


class SecurityHeaders:
    """ASGI middleware adding the CSP and friends to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        docs = any(path == p or path.startswith(p + "/") for p in DOCS_PATHS)
        extra = [(b"content-security-policy", (DOCS_CSP if docs else CSP).encode()),
                 (b"x-content-type-options", b"nosniff"),
                 (b"referrer-policy", b"no-referrer")]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in extra if k not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)
