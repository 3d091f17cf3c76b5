"""Request limits as one plain ASGI middleware: size caps, API key, per-request timeout, cache.

Kept out of the routes so every request passes the same checks before any
work is done, and written as raw ASGI (not ``BaseHTTPMiddleware``) so it
costs microseconds. Refusals are JSON: an ``OperationOutcome`` under
``/fhir``, ``{"error": ...}`` elsewhere. Request bodies are never logged.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hmac
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger("medcodes.server")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may read even when an API key is set (the page itself, the docs, FHIR metadata).
PUBLIC_PREFIXES = ("/web/", "/docs", "/redoc", "/openapi.json", "/fhir/metadata", "/health")
PUBLIC_EXACT = ("/", "/favicon.ico")


@dataclass(frozen=True)
class Settings:
    """Server limits; :meth:`from_env` reads ``MEDCODES_*`` variables."""

    api_key: str | None = None
    max_body: int = 1_000_000          # bytes of request body
    max_query: int = 4096              # bytes of path + query string
    timeout: float = 10.0              # seconds per request

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            api_key=env.get("MEDCODES_API_KEY") or None,
            max_body=int(env.get("MEDCODES_MAX_BODY", cls.max_body)),
            max_query=int(env.get("MEDCODES_MAX_QUERY", cls.max_query)),
            timeout=float(env.get("MEDCODES_TIMEOUT", cls.timeout)),
        )


def error_body(path: str, status: int, message: str, code: str) -> bytes:
    if path.startswith("/fhir"):
        from .fhir import outcome

        doc: dict[str, Any] = outcome(message, code)
    else:
        doc = {"error": message, "status": status}
    return json.dumps(doc).encode()


async def send_error(send: Send, path: str, status: int, message: str, code: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(path, status, message, code)
    ctype = b"application/fhir+json" if path.startswith("/fhir") else b"application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class ResponseCache:
    """LRU of finished responses ``(status, content type, body)`` of idempotent reads.

    Keys are ``(path, query string, request body, today)``: releases never change while
    installed, and the release in effect can only change with the date.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._data: OrderedDict[Any, tuple[int, bytes, bytes]] = OrderedDict()

    @staticmethod
    def key(path: str, query: bytes, body: bytes = b"") -> tuple[str, bytes, bytes, str]:
        return (path, query, body, _dt.date.today().isoformat())

    def get(self, key: Any) -> tuple[int, bytes, bytes] | None:
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
        return hit

    def put(self, key: Any, value: tuple[int, bytes, bytes]) -> None:
        if self.size <= 0:  # MEDCODES_RESPONSE_CACHE=0: caching off
            return
        self._data[key] = value
        if len(self._data) > self.size:
            self._data.popitem(last=False)


class BodyTooLarge(Exception):
    """The client sent more than ``max_body`` bytes."""


class Guard:
    """Size caps (414/413), API key (401), per-request timeout (503) around the app."""

    def __init__(self, app: ASGIApp, settings: Settings, cache: ResponseCache | None = None) -> None:
        self.app = app
        self.settings = settings
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if len(path) + len(query) > s.max_query:
            await send_error(send, path, 414, f"request URI longer than {s.max_query} bytes", "too-costly")
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if s.api_key and not _public(path) and not _authorized(headers, s.api_key):
            await send_error(send, path, 401, "an API key is required (X-API-Key or Authorization: Bearer)",
                             "login", [(b"www-authenticate", b'Bearer realm="medcodes"')])
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > s.max_body
            except ValueError:
                await send_error(send, path, 400, "bad Content-Length", "structure")
                return
            if too_big:
                await send_error(send, path, 413, f"request body larger than {s.max_body} bytes", "too-costly")
                return
        if self.cache is not None and scope.get("method") == "GET":
            hit = self.cache.get(ResponseCache.key(path, query))
            if hit is not None:  # answered before any routing: the fast path for repeated reads
                status, ctype, body = hit
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self._run(scope, receive, send, path)

    async def _run(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        s = self.settings
        started = False
        seen = 0

        async def capped_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > s.max_body:
                    raise BodyTooLarge()
            return msg

        async def tracked_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            async with asyncio.timeout(s.timeout):
                await self.app(scope, capped_receive, tracked_send)
        except TimeoutError:
            log.warning("timeout after %.1fs: %s %s", s.timeout, scope.get("method"), path)
            if not started:
                await send_error(send, path, 503, f"request took longer than {s.timeout:g}s", "timeout",
                                 [(b"retry-after", b"1")])
        except BodyTooLarge:
            if not started:
                await send_error(send, path, 413, f"request body larger than {s.max_body} bytes", "too-costly")


def _public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def _authorized(headers: dict[bytes, bytes], key: str) -> bool:
    given = headers.get(b"x-api-key")
    if given is None:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
    return given is not None and hmac.compare_digest(given, key.encode())
