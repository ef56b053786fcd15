"""The optional API token (``QA_API_TOKEN``).

Scripts send ``Authorization: Bearer <token>``. The chat page signs in once
with the token and then carries a session cookie (HttpOnly, SameSite=Strict)
whose value is derived from the token, never the token itself. Both are
compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac

COOKIE = "qa_session"


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
