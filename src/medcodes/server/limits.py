"""Request limits as one plain ASGI middleware: size caps, API key, per-request timeout, cache.

Kept out of the routes so every request passes the same checks before any
work is done, and written as raw ASGI (not ``BaseHTTPMiddleware``) so it
costs microseconds. Refusals are JSON: an ``OperationOutcome`` under
``/fhir``, ``{"error": ...}`` elsewhere. Request bodies are never logged.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import json
import logging
import os
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import anyio

log = logging.getLogger("medcodes.server")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may read even when an API key is set (the page itself, the docs, FHIR metadata).
PUBLIC_PREFIXES = ("/web/", "/docs", "/redoc", "/openapi.json", "/fhir/metadata", "/health")
PUBLIC_EXACT = ("/", "/favicon.ico")


#: ASGI scope key of the request's deadline (an anyio CancelScope), set by :class:`Guard`
DEADLINE = "medcodes.deadline"


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


async def send_response(send: Send, hit: tuple[int, bytes, bytes]) -> None:
    """Send a finished ``(status, content type, body)`` response."""
    status, ctype, body = hit
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


FastRoute = Callable[[bytes], Awaitable["tuple[int, bytes, bytes] | None"]]


class ResponseCache:
    """LRU of finished responses ``(status, content type, body)`` of idempotent reads, bounded in bytes.

    Keys are built by :meth:`key` from the *normalized* request -- the path, the query
    string (already capped at ``max_query`` bytes) or the parsed operation parameters,
    and today's date (releases never change while installed; the release in effect can
    only change with the date) -- never from a raw request body. An entry whose key or
    body is larger than :attr:`MAX_ENTRY` bytes is not kept, and the least recently used
    entries are dropped once the keys and bodies held reach ``max_bytes``.
    """

    #: bytes of one entry's key + body beyond which it is not cached
    MAX_ENTRY = 256 * 1024
    #: per-entry bookkeeping (tuple, OrderedDict node, bytes headers), counted against the budget
    OVERHEAD = 240

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[Any, tuple[int, bytes, bytes, int]] = OrderedDict()

    @staticmethod
    def key(path: str, query: bytes | str, extra: str = "") -> tuple[str, bytes | str, str, str]:
        return (path, query, extra, _dt.date.today().isoformat())

    def __len__(self) -> int:
        return len(self._data)

    @property
    def enabled(self) -> bool:
        """False with ``MEDCODES_RESPONSE_CACHE_MB=0``: callers skip building keys."""
        return self.max_bytes > 0

    def get(self, key: Any) -> tuple[int, bytes, bytes] | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        self._data.move_to_end(key)
        return hit[0], hit[1], hit[2]

    def put(self, key: Any, value: tuple[int, bytes, bytes]) -> None:
        if self.max_bytes <= 0:  # MEDCODES_RESPONSE_CACHE_MB=0: caching off
            return
        size = _key_size(key) + len(value[2]) + self.OVERHEAD
        if size > self.MAX_ENTRY or size > self.max_bytes:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[3]
        self._data[key] = (*value, size)
        self.bytes += size
        while self.bytes > self.max_bytes and self._data:
            _, dropped = self._data.popitem(last=False)
            self.bytes -= dropped[3]


def _key_size(key: Any) -> int:
    if isinstance(key, (str, bytes)):
        return len(key)
    if isinstance(key, tuple):
        return sum(_key_size(k) for k in key) + 8 * len(key)
    return 16


class BodyTooLarge(Exception):
    """The client sent more than ``max_body`` bytes."""


class Cancelled(Exception):
    """Work abandoned because its request timed out (raised inside the worker thread)."""


class CancelToken:
    """Set when a request's time is up, so the thread still working on it can stop.

    The worker threads' SQLite connections check it through a progress handler; pure
    Python loops may poll :meth:`check`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class Guard:
    """Size caps (414/413), API key (401), per-request timeout (503) around the app."""

    def __init__(self, app: ASGIApp, settings: Settings, cache: ResponseCache | None = None,
                 fast: dict[str, FastRoute] | None = None) -> None:
        self.app = app
        self.settings = settings
        self.cache = cache
        #: GET paths answered without the framework's routing when their query is well-formed
        #: (a handler returns None to hand the request to the app, which then gives the error)
        self.fast = fast or {}

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
        if self.cache is not None and self.cache.enabled and scope.get("method") == "GET":
            hit = self.cache.get(ResponseCache.key(path, query))
            if hit is not None:  # answered before any routing: the fast path for repeated reads
                await send_response(send, hit)
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

        fast = self.fast.get(path) if scope.get("method") == "GET" else None
        try:
            if fast is not None:  # computed on the loop without awaiting: no deadline to enforce
                hit = await fast(scope.get("query_string", b""))
                if hit is not None:
                    started = True
                    await send_response(send, hit)
                    return
            # anyio's cancel scope (not asyncio.timeout, which is Python 3.11+): the work of the
            # request is cancelled at the deadline, and threads it started are told to stop.
            with anyio.fail_after(s.timeout) as deadline:
                # a route may pause its deadline while it waits for a one-off load (POST /code)
                scope[DEADLINE] = deadline
                await self.app(scope, capped_receive, tracked_send)
        except TimeoutError:
            log.warning("timeout after %.1fs: %s %s", s.timeout, scope.get("method"), path)
            if not started:
                await send_error(send, path, 503, f"request took longer than {s.timeout:g}s", "timeout",
                                 [(b"retry-after", b"1")])
        except BodyTooLarge:
            if not started:
                await send_error(send, path, 413, f"request body larger than {s.max_body} bytes", "too-costly")
        except Exception as exc:  # noqa: BLE001 - the app already answered 500 (or could not): one log line
            log.error("internal error on %s %s: %s", scope.get("method"), path, _where(exc))
            if not started:
                await send_error(send, path, 500, f"internal error: {type(exc).__name__}", "exception")


def _where(exc: BaseException) -> str:
    """``TypeName at file.py:line`` of the innermost frame: enough to find a bug, no request data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {os.path.basename(last.filename)}:{last.lineno}"


def _public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def _authorized(headers: dict[bytes, bytes], key: str) -> bool:
    given = headers.get(b"x-api-key")
    if given is None:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
    return given is not None and hmac.compare_digest(given, key.encode())
