"""Optional API key: `Authorization: Bearer <key>` on every /v1 path, as OpenAI and vLLM (--api-key).

A pure ASGI middleware rather than a FastAPI dependency, for two reasons: it runs before the body is parsed
(an unauthenticated request with a broken body is a 401, not a 400), and it does not wrap streaming
responses (Starlette's BaseHTTPMiddleware would sit between the client and the SSE stream).
/health, /metrics and the web page stay open, as in vLLM. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from stellarbyte.serve.errors import OpenAIError, error_response


class APIKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str, protected_prefix: str = "/v1") -> None:
        if not api_key:
            raise ValueError("api_key is empty; pass a non-empty key or None to serve without one")
        self.app, self.prefix = app, protected_prefix
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            why = "missing" if not given else "incorrect"
            err = OpenAIError(f"{why} API key: send the header 'Authorization: Bearer <key>' with the key the "
                              f"server was started with (--api-key / STELLARBYTE_API_KEY)", 401,
                              code="invalid_api_key")
            return await error_response(err)(scope, receive, send)
        return await self.app(scope, receive, send)
