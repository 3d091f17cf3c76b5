"""The HTTP service: REST JSON routes, FHIR R4 terminology operations and the web page.

``create_app(home)`` builds a FastAPI app over the store under ``home`` (or
``MEDCODES_HOME``); ``medcodes serve`` runs it under uvicorn. OpenAPI docs are
at ``/docs``. Routes are thin: they parse the request, ask a
:class:`~medcodes.Codebook` (or :mod:`medcodes.server.fhir`) and serialise.

Concurrency: quick reads ($lookup, $validate-code, /codes) run on the event
loop with the loop's own Codebook and their responses are cached (releases
never change while installed); heavier work ($expand, /search, claims, diff)
runs in worker threads, each with its own Codebook (SQLite connections are
not shared across threads), under the per-request timeout of
:class:`~medcodes.server.limits.Guard`.

Search, claims, diff/history and the GEM mapping are separate modules written
alongside this one; they are imported lazily and a route whose module is
missing answers 501.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import gc
import importlib
import logging
import math
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qsl, unquote

import anyio
import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..codebook import Codebook
from ..errors import MedcodesError, NotFound, NotInstalled
from ..model import SYSTEM_NAMES, SYSTEMS, normalize_key
from . import fhir
from .limits import DEADLINE, BodyTooLarge, Cancelled, CancelToken, Guard, ResponseCache, Settings

log = logging.getLogger("medcodes.server")

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
FHIR_JSON = "application/fhir+json"


class ApiError(Exception):
    """A REST error: ``{"error": message}`` with ``status`` (plus suggestions for unknown codes)."""

    def __init__(self, status: int, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.suggestions = suggestions or []


class Books:
    """One Codebook per thread over the same store (SQLite connections stay in their thread).

    Work that leaves the event loop runs on :attr:`pool`, a fixed set of ``workers``
    long-lived threads (not anyio's pool, whose threads come and go): the number of
    Codebooks, and the row caches each holds, stays bounded however long the server runs.
    """

    def __init__(self, home: str | os.PathLike[str] | None, workers: int = 4) -> None:
        self.home = home
        self._local = threading.local()
        self._all: list[Codebook] = []
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=WORKER_PREFIX)
        self.search_ready: set[Any] = set()  # dates whose search engine is loaded: searched on the loop
        self.coder_ready: set[Any] = set()   # dates whose coding assistant is loaded

    def get(self) -> Codebook:
        book = getattr(self._local, "book", None)
        if book is None:
            book = Codebook.open(self.home)
            if threading.current_thread().name.startswith(WORKER_PREFIX):
                _watch_cancel(book, self._local)
            self._local.book = book
            with self._lock:
                self._all.append(book)
        return book

    def run_as(self, token: CancelToken | None) -> None:
        """The request the current worker thread works for (its SQLite statements watch ``token``)."""
        self._local.token = token

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for book in self._all:
                book.close()
            self._all.clear()


JSON = b"application/json"
FHIR = FHIR_JSON.encode()
WORKER_PREFIX = "medcodes-worker"


def _watch_cancel(book: Codebook, local: threading.local) -> None:
    """Every release a worker thread's Codebook opens stops its statement (``interrupted``) once the
    token of the request that thread is working for is cancelled (see :meth:`Books.run_as`)."""
    store = book.store
    opened = store.open

    def stop() -> bool:
        token = getattr(local, "token", None)
        return token is not None and token.cancelled

    def open_watched(system: str, release: str) -> Any:
        db = opened(system, release)
        if getattr(db, "_watched", False) is False:
            db.conn.set_progress_handler(stop, 5000)
            db._watched = True
        return db

    store.open = open_watched  # type: ignore[method-assign]


#: JSON nesting deeper than this is refused before any reader walks it (claims are a few levels deep)
MAX_JSON_DEPTH = 64


def _cache_key(request: Request, params: "fhir.Params | None" = None) -> Any:
    """The response-cache key of a request: path and query string for a GET (the key the Guard
    computes before routing), the parsed parameters (sorted, re-serialised) for a POST -- so
    equal requests share an entry however their bodies are spelled, and bodies are never keys."""
    if request.method == "POST":
        return ResponseCache.key(request.scope["path"], b"", params.canonical() if params is not None else "")
    return ResponseCache.key(request.scope["path"], request.scope.get("query_string", b""))


def _parse_date(raw: str | None, name: str = "date") -> _dt.date | None:
    """``YYYY-MM-DD`` (or None); a 400 naming the parameter otherwise."""
    if raw is None or raw == "":
        return None
    try:
        if len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
            return _dt.date.fromisoformat(raw)
    except ValueError:
        pass
    raise ApiError(400, f"{name}: {_cut(raw)!r} is not a valid date (YYYY-MM-DD)")


def _cut(text: str, n: int = 60) -> str:
    """An echo of user input, shortened so an error message stays one readable line."""
    return text if len(text) <= n else text[: n - 3] + "..."


def _dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, default=str)  # ~10x faster than json.dumps on a $lookup response


def fhir_response(doc: Any, status: int = 200) -> Response:
    return Response(_dumps(doc), status_code=status, media_type=FHIR_JSON)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(_dumps(doc), status_code=status, media_type="application/json")


def _optional(module: str) -> Any | None:
    """A medcodes module written by another part of the project, or None while it is absent."""
    try:
        return importlib.import_module(f"medcodes.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("medcodes"):
            return None
        raise


def create_app(home: str | os.PathLike[str] | None = None, settings: Settings | None = None) -> Any:
    """The ASGI app (FastAPI wrapped in the limits guard)."""
    settings = settings or Settings.from_env()
    books = Books(home if home is not None else os.environ.get("MEDCODES_HOME"),
                  int(os.environ.get("MEDCODES_THREADS", "4")))
    cache = ResponseCache(_cache_bytes())
    # imported here, on one thread: the warm-up thread and a first request importing it (and the
    # search package it uses) at the same moment can see a half-imported package
    _optional("coding.assistant")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        books.pool.submit(_warm, books)
        yield
        books.close()

    api = FastAPI(title="medcodes", version=__version__, lifespan=lifespan,
                  description="US medical billing codes (ICD-10-CM, ICD-10-PCS, HCPCS Level II, CPT, "
                              "ICD-9-CM): REST JSON and FHIR R4 terminology operations.")
    api.state.books = books
    api.state.settings = settings
    _errors(api)
    _rest_routes(api, books, cache)
    _fhir_routes(api, books, cache)
    _workbench_routes(api, books)
    _web_routes(api)

    books.get().releases()  # compile the embedded ICD-10-CM now if the store has none
    guarded = Guard(api, settings, cache, _fast_routes(books, cache))
    guarded.api = api  # type: ignore[attr-defined]
    return guarded


def _cache_bytes() -> int:
    """MEDCODES_RESPONSE_CACHE_MB (default 32; 0 turns the response cache off)."""
    raw = os.environ.get("MEDCODES_RESPONSE_CACHE_MB")
    if raw is None and os.environ.get("MEDCODES_RESPONSE_CACHE") == "0":  # the older switch
        return 0
    try:
        return int(float(raw if raw is not None else 32) * 1024 * 1024)
    except ValueError:
        raise SystemExit(f"MEDCODES_RESPONSE_CACHE_MB={raw!r}: not a number of megabytes") from None


# ====================================================================== errors
def _errors(api: FastAPI) -> None:
    def is_fhir(request: Request) -> bool:
        return request.url.path.startswith("/fhir")

    @api.exception_handler(fhir.FhirError)
    async def _fhir_error(request: Request, exc: fhir.FhirError) -> Response:
        return fhir_response(fhir.outcome(exc.message, exc.code), exc.status)

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        body: dict[str, Any] = {"error": exc.message, "status": exc.status}
        if exc.suggestions:
            body["suggestions"] = exc.suggestions
        return json_response(body, exc.status)

    @api.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        msg = f"request body larger than {api.state.settings.max_body} bytes"
        return (fhir_response(fhir.outcome(msg, "too-costly"), 413) if is_fhir(request)
                else json_response({"error": msg, "status": 413}, 413))

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
        msg = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return (fhir_response(fhir.outcome(msg, "invalid"), 400) if is_fhir(request)
                else json_response({"error": msg, "status": 400}, 400))

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        msg = str(exc.detail)
        if is_fhir(request):
            code = "not-found" if exc.status_code == 404 else "not-supported" if exc.status_code == 405 else "invalid"
            return fhir_response(fhir.outcome(f"{request.url.path}: {msg}", code), exc.status_code)
        return json_response({"error": f"{request.url.path}: {msg}", "status": exc.status_code}, exc.status_code)

    @api.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        # logged once, in one line, by the Guard (never the request body: claims are PHI)
        msg = f"internal error: {type(exc).__name__}"
        return (fhir_response(fhir.outcome(msg, "exception"), 500) if is_fhir(request)
                else json_response({"error": msg, "status": 500}, 500))


def _warm(books: Books) -> None:
    """Start-up warm-up on one worker thread: the search index, then (``MEDCODES_WARM_CODER=1``)
    the coding assistant's books (~4 s of CPU, ~0.4 GB: not loaded unless asked for, or until the
    first POST /code, which then waits for them outside its per-request timeout)."""
    _warm_search(books)
    if os.environ.get("MEDCODES_WARM_CODER", "") not in ("", "0"):
        _warm_coder(books)


def _warm_coder(books: Books) -> None:
    """Load the coding assistant's books (seconds) so the first POST /code does not wait."""
    mod = _optional("coding.assistant")
    if mod is None or not hasattr(mod, "prepare"):
        return
    try:
        mod.prepare(books.get())
        books.coder_ready.add(_dt.date.today())
    except Exception as exc:  # noqa: BLE001 - a warm-up failure shows again on the first note
        log.warning("coding assistant warm-up failed: %s", type(exc).__name__)


def _warm_search(books: Books) -> None:
    """Build (or load) the search index in the background so the first query does not wait."""
    mod = _optional("search")
    if mod is None or not hasattr(mod, "prepare"):
        return
    try:
        mod.prepare(books.get())
        books.search_ready.add(None)
        # the engine's arrays and vocabularies, the modules and the app are here for the process's
        # life: move them out of the cyclic GC's reach, so its full collections stay short
        # (a full pass over them stalled every request for up to a second under load)
        gc.collect()
        gc.freeze()
    except Exception as exc:  # noqa: BLE001 - a warm-up failure shows again on the first search
        log.warning("search index warm-up failed: %s", type(exc).__name__)


async def _load_coder(request: Request, books: Books, day: _dt.date | None) -> None:
    """Load the coding assistant for ``day`` (seconds, once per set of releases; usually done at
    start by :func:`_warm_coder`). The request's deadline is paused meanwhile: the one-off load
    is not the note's work, and the per-request timeout applies again from the moment it is done."""
    mod = _optional("coding.assistant")
    if mod is None:
        raise ApiError(501, "the coding assistant is not available in this build (medcodes.coding missing)")
    deadline = request.scope.get(DEADLINE)
    budget = deadline.deadline - anyio.current_time() if deadline is not None else None
    if deadline is not None:
        deadline.deadline = math.inf
    try:
        await _in_thread(books, lambda b: mod.prepare(b, day))
    except MedcodesError as exc:
        raise ApiError(400, str(exc)) from None
    finally:
        if deadline is not None:
            deadline.deadline = anyio.current_time() + budget
    if len(books.coder_ready) > 1000:
        books.coder_ready.clear()
    books.coder_ready.add(day or _dt.date.today())


def _book_error(exc: MedcodesError) -> ApiError:
    if isinstance(exc, NotFound):
        return ApiError(404, str(exc), exc.suggestions)
    if isinstance(exc, NotInstalled):
        return ApiError(404, str(exc))
    return ApiError(400, str(exc))


def _check_system(system: str | None) -> str | None:
    if system is not None and system not in SYSTEMS:
        raise ApiError(400, f"{system!r}: unknown system (one of {', '.join(SYSTEMS)})")
    return system


async def _in_thread(books: Books, fn: Callable[[Codebook], Any]) -> Any:
    """Run ``fn(book)`` on a worker thread with that thread's Codebook.

    On timeout the request is answered at once (503), its work is dropped if it has not
    started, and otherwise stopped: the thread's SQLite statements watch the request's
    :class:`CancelToken` (``Cancelled`` is raised in the thread, nobody waits for it).
    """
    token = CancelToken()

    def work() -> Any:
        books.run_as(token)
        try:
            return fn(books.get())
        except sqlite3.OperationalError as exc:
            if token.cancelled and "interrupt" in str(exc):
                raise Cancelled() from None
            raise
        finally:
            books.run_as(None)

    try:
        # a cancelled await abandons the thread's work (and drops it if not yet started)
        return await asyncio.get_running_loop().run_in_executor(books.pool, work)
    except BaseException:
        token.cancel()  # a timeout (cancellation) or an error: the thread stops at its next check
        raise


# ====================================================================== REST
def _rest_routes(api: FastAPI, books: Books, cache: ResponseCache) -> None:
    @api.get("/health", tags=["service"])
    async def health() -> Response:
        return json_response({"status": "ok", "version": __version__})

    @api.get("/releases", tags=["codes"], summary="Installed releases")
    async def releases(system: str | None = None) -> Response:
        _check_system(system) if system != "crosswalk" else None
        return json_response([i.as_dict() for i in books.get().releases(system)])

    @api.get("/codes/{code}", tags=["codes"], summary="The whole record of one code")
    async def code(request: Request, code: str, system: str | None = None, date: str | None = None) -> Response:
        _check_system(system)
        key = _cache_key(request)
        hit = cache.get(key)
        if hit is None:
            try:
                rec = books.get().lookup(code, system=system, date=date)
                hit = (200, JSON, _dumps(rec.as_dict()))
            except MedcodesError as exc:
                err = _book_error(exc)
                body: dict[str, Any] = {"error": err.message, "status": err.status}
                if err.suggestions:
                    body["suggestions"] = err.suggestions
                hit = (err.status, JSON, _dumps(body))
            cache.put(key, hit)
        return Response(hit[2], status_code=hit[0], media_type="application/json")

    @api.get("/codes", tags=["codes"], summary="Codes of a system that start with a prefix")
    async def codes(prefix: str = Query(..., min_length=1, max_length=16), system: str = "icd10cm",
                    limit: int = Query(20, ge=1, le=200), date: str | None = None) -> Response:
        _check_system(system)
        try:
            db = books.get().db(system, date)
        except MedcodesError as exc:
            raise _book_error(exc) from None
        rows = db.prefix(normalize_key(prefix), limit=limit)
        return json_response({"system": system, "release": db.info.release, "prefix": prefix,
                              "results": [_brief(system, r) for r in rows]})

    @api.get("/identify", tags=["codes"], summary="Every plausible reading of a raw string as a code")
    async def identify(q: str = Query(..., min_length=1, max_length=64), date: str | None = None) -> Response:
        try:
            idents = books.get().identify(q, date)
        except MedcodesError as exc:
            raise _book_error(exc) from None
        return json_response([i.as_dict() for i in idents])

    @api.get("/search", tags=["codes"], summary="Search titles and codes")
    async def search(request: Request, q: str = Query(..., min_length=1, max_length=200), system: str | None = None,
                     limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=10_000),
                     date: str | None = None) -> Response:
        _check_system(system)
        mod = _optional("search")
        if mod is None:
            raise ApiError(501, "search is not available in this build (medcodes.search missing)")

        day = _parse_date(date)

        def run(book: Codebook) -> Any:
            try:
                return mod.search(book, q, systems=system, limit=limit, offset=offset, date=day).as_dict()
            except MedcodesError as exc:
                raise _book_error(exc) from None

        key = _cache_key(request)
        hit = cache.get(key)
        if hit is None:
            if day in books.search_ready:  # engine loaded: ~0.3 ms of numpy, cheaper than a thread hop
                result = run(books.get())
            else:  # the first search for a date loads (or builds) its engine: off the loop
                result = await _in_thread(books, run)
                books.search_ready.add(day)
            if result.get("error"):
                raise ApiError(400, f"q: {result['error']}")
            hit = (200, JSON, _dumps(result))
            cache.put(key, hit)
        return Response(hit[2], status_code=200, media_type="application/json")

    @api.post("/claims/check", tags=["claims"], summary="Check a claim (JSON claim format) and list findings")
    async def check_claim(request: Request) -> Response:
        claims = _optional("claims")
        check = getattr(claims, "check", None) if claims else None
        if check is None:
            raise ApiError(501, "claim checking is not available in this build (medcodes.claims.check missing)")
        body = await _json_body(request)
        from ..claims.model import ClaimFormatError
        from ..claims.readers import claims_from_json

        fhir_doc = isinstance(body, dict) and "resourceType" in body
        docs = body if isinstance(body, list) else body.get("claims") if isinstance(body, dict) and \
            "claims" in body and not fhir_doc else [body]
        if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
            raise ApiError(400, "send one claim object, a list of claims, {\"claims\": [...]}, "
                                "a FHIR Claim or a FHIR Bundle of Claims")
        if len(docs) > 1000:
            raise ApiError(413, "at most 1000 claims per request")
        try:
            parsed = claims_from_json(body if fhir_doc else docs, where="fhir" if fhir_doc else "claims",
                                      validate=False)  # Claim.from_dict checks every field it reads
        except ClaimFormatError as exc:
            raise ApiError(400, str(exc)) from None
        if len(parsed) > 1000:
            raise ApiError(413, "at most 1000 claims per request")

        def run(book: Codebook) -> Any:
            return [check(book, c).as_dict() for c in parsed]

        results = await _in_thread(books, run)
        many = isinstance(body, list) or (isinstance(body, dict) and "claims" in body and not fhir_doc) \
            or (fhir_doc and body.get("resourceType") == "Bundle")
        return json_response(results if many else results[0])

    @api.post("/claims/group", tags=["claims"], summary="MS-DRG grouping of an inpatient claim (JSON claim format)")
    async def group_claim(request: Request) -> Response:
        body = await _json_body(request)
        from ..claims.grouping import GroupingError, group
        from ..claims.model import Claim, ClaimFormatError

        try:
            claim = Claim.from_dict(body, where="claim")
        except ClaimFormatError as exc:
            raise ApiError(400, str(exc)) from None

        def run(book: Codebook) -> Any:
            try:
                return group(book, claim)
            except GroupingError as exc:
                return {"error": str(exc)}

        result = await _in_thread(books, run)
        if "error" in result:
            raise ApiError(422, result["error"])
        return json_response(result)

    @api.post("/code", tags=["coding"], summary="Suggest codes for a clinical note, with the evidence")
    async def code_note(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ApiError(400, 'send {"text": "<note>", "setting": "outpatient"|"inpatient", "date": "YYYY-MM-DD"}')
        setting = body.get("setting", "outpatient")
        systems = body.get("systems")
        if systems is not None and (not isinstance(systems, list) or not all(isinstance(x, str) for x in systems)):
            raise ApiError(400, "systems: a list of system ids")

        raw_date = body.get("date")
        day = _parse_date(raw_date) if isinstance(raw_date, str) else raw_date
        if day is not None and not isinstance(day, _dt.date):
            raise ApiError(400, "date: a YYYY-MM-DD string")
        if (day or _dt.date.today()) not in books.coder_ready:
            await _load_coder(request, books, day)

        def run(book: Codebook) -> Any:
            try:
                return book.code(body["text"], setting=setting, date=day, systems=systems).as_dict()
            except MedcodesError as exc:
                raise ApiError(400, str(exc)) from None

        return json_response(await _in_thread(books, run))

    @api.get("/diff", tags=["releases"], summary="What changed between two releases of a system")
    async def diff(system: str, from_: str | None = Query(None, alias="from"), to: str | None = None,
                   limit: int = Query(1000, ge=1, le=100_000)) -> Response:
        _check_system(system)
        mod = _optional("diff")
        if mod is None:
            raise ApiError(501, "release diffs are not available in this build (medcodes.diff missing)")

        def run(book: Codebook) -> Any:
            rels = [i.release for i in book.releases(system)]
            old, new = from_ or (rels[-2] if len(rels) > 1 else None), to or (rels[-1] if rels else None)
            if old is None or new is None:
                raise ApiError(404, f"{system}: two installed releases are needed for a diff "
                                    f"(installed: {', '.join(rels) or 'none'})")
            for r in (old, new) if system != "hcpcs" else (new,):  # HCPCS: a release's own action codes
                if r not in rels:
                    raise ApiError(404, f"{system} release {r!r} is not installed (installed: {', '.join(rels)})")
            try:
                return mod.diff(book, system, old, new).as_dict()
            except MedcodesError as exc:
                raise _book_error(exc) from None

        return json_response(_trim(await _in_thread(books, run), limit))

    @api.get("/history/{code}", tags=["releases"], summary="A code across every installed release")
    async def history(code: str, system: str | None = None) -> Response:
        _check_system(system)
        mod = _optional("diff")
        if mod is None or not hasattr(mod, "history"):
            raise ApiError(501, "code history is not available in this build (medcodes.diff.history missing)")

        def run(book: Codebook) -> Any:
            try:
                sys_ = system or _system_of(book, code)
                steps = mod.history(book, sys_, code)
            except MedcodesError as exc:
                raise _book_error(exc) from None
            return {"system": sys_, "code": code, "releases": [s.as_dict() for s in steps]}

        return json_response(await _in_thread(books, run))


def _system_of(book: Codebook, code: str) -> str:
    """The system of the most likely existing reading of ``code`` (else the most plausible)."""
    idents = book.identify(code)
    for ident in idents:
        if ident.exists or ident.status == "deleted":
            return ident.system
    if not idents:
        raise NotFound(f"{code!r}: not a code of any system medcodes knows")
    return idents[0].system


def _trim(data: Any, limit: int) -> Any:
    """Cap every list in a diff to ``limit`` items (the counts stay as computed)."""
    if isinstance(data, dict):   # (a HCPCS action-code diff nests its lists one level down)
        return {k: (v[:limit] if isinstance(v, list) else _trim(v, limit) if isinstance(v, dict) else v)
                for k, v in data.items()}
    return data[:limit] if isinstance(data, list) else data


def _brief(system: str, row: Any) -> dict[str, Any]:
    b = row["billable"]
    return {"system": system, "code": row["code"], "title": row["title"], "kind": row["kind"],
            "billable": None if b is None else bool(b)}


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise ApiError(400, "the request body is empty (expected JSON)")
    return _loads(raw, lambda msg: ApiError(400, msg))


def _loads(raw: bytes, error: Callable[[str], Exception]) -> Any:
    """Parse a JSON body (orjson: no recursion, depth capped) and refuse deep nesting, one-line errors."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc).lower():
            raise error(f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
        raise error(f"the request body is not valid JSON ({_cut(str(exc), 100)})") from None
    if _depth(doc) > MAX_JSON_DEPTH:
        raise error(f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    return doc


def _depth(doc: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (stops counting past MAX_JSON_DEPTH)."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > MAX_JSON_DEPTH:
                break
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node if isinstance(v, (dict, list)))
    return deepest


# ====================================================================== FHIR
def _fhir_routes(api: FastAPI, books: Books, cache: ResponseCache) -> None:
    cached_ops: dict[str, Callable[[Codebook, fhir.Params], dict[str, Any]]] = {
        "CodeSystem/$lookup": fhir.lookup,
        "CodeSystem/$validate-code": lambda b, p: fhir.validate_code(b, p, valueset=False),
        "ValueSet/$validate-code": lambda b, p: fhir.validate_code(b, p, valueset=True),
        "CodeSystem/$subsumes": fhir.subsumes,
    }

    def make_cached(op: str, fn: Callable[[Codebook, fhir.Params], dict[str, Any]]) -> Callable[..., Any]:
        async def handler(request: Request) -> Response:
            params = None
            if request.method == "POST":
                params = await _fhir_params(request, await request.body())
            key = _cache_key(request, params)
            hit = cache.get(key)
            if hit is None:
                params = params or await _fhir_params(request, b"")
                hit = _fhir_op(fn, books.get(), params)
                if hit[0] in (200, 404):
                    cache.put(key, hit)
            return Response(hit[2], status_code=hit[0], media_type=FHIR_JSON)

        handler.__name__ = op.replace("/", "_").replace("$", "").replace("-", "_")
        return handler

    for op, fn in cached_ops.items():
        handler = make_cached(op, fn)
        for method in ("GET", "POST"):
            api.add_api_route(f"/fhir/{op}", handler, methods=[method], tags=["fhir"],
                              operation_id=f"{handler.__name__}_{method.lower()}",
                              summary=f"FHIR {op} (GET query parameters or POST a Parameters resource)")

    async def expand(request: Request) -> Response:
        params = await _fhir_params(request, await request.body() if request.method == "POST" else b"")
        fhir.check_expand(params)  # refuse a filter too costly to run before taking a thread
        return fhir_response(await _in_thread(books, lambda b: fhir.expand(b, params)))

    async def translate(request: Request) -> Response:
        mapping = _optional("mapping")
        if mapping is None or not hasattr(mapping, "map_code"):
            raise fhir.FhirError(501, "not-supported", "$translate is not available in this build "
                                                       "(medcodes.mapping missing)")
        params = await _fhir_params(request, await request.body() if request.method == "POST" else b"")
        return fhir_response(await _in_thread(books, lambda b: fhir.translate(b, params, mapping)))

    for path, fn, summary in (
        ("/fhir/ValueSet/$expand", expand, "FHIR ValueSet/$expand of <system uri>?fhir_vs (filter, count, offset)"),
        ("/fhir/ConceptMap/$translate", translate, "FHIR ConceptMap/$translate with the ICD-9-CM <-> ICD-10 GEMs"),
    ):
        for method in ("GET", "POST"):  # one route per method: distinct OpenAPI operation ids
            api.add_api_route(path, fn, methods=[method], tags=["fhir"], summary=summary,
                              operation_id=f"{fn.__name__}_{method.lower()}")

    @api.get("/fhir/metadata", tags=["fhir"], summary="CapabilityStatement (?mode=terminology: TerminologyCapabilities)")
    async def metadata(request: Request, mode: str | None = None) -> Response:
        if mode == "terminology":
            return fhir_response(fhir.terminology_capabilities(books.get()))
        if mode not in (None, "full", "normative"):
            raise fhir.FhirError(400, "invalid", f"mode={mode!r}: use full, normative or terminology")
        mapping = _optional("mapping")
        return fhir_response(fhir.capability_statement(_base(request), bool(mapping and
                                                                           hasattr(mapping, "map_code"))))

    @api.get("/fhir/CodeSystem", tags=["fhir"], summary="CodeSystem resources of the installed releases")
    async def code_systems(request: Request, url: str | None = None, version: str | None = None,
                           _id: str | None = Query(None, alias="_id")) -> Response:
        return fhir_response(fhir.code_system_bundle(books.get(), url, version, _id, _base(request)))

    @api.get("/fhir/CodeSystem/{rid}", tags=["fhir"], summary="One CodeSystem resource (id <system>-<release>)")
    async def code_system(rid: str) -> Response:
        for info in fhir.code_system_infos(books.get()):
            if fhir.code_system_id(info) == rid:
                return fhir_response(fhir.code_system(books.get(), info))
        raise fhir.FhirError(404, "not-found", f"CodeSystem/{rid}: no such release installed")


def _fhir_op(fn: Callable[[Codebook, fhir.Params], dict[str, Any]], book: Codebook,
             params: fhir.Params) -> tuple[int, bytes, bytes]:
    """A FHIR operation's finished response: its resource, or the OperationOutcome of its FhirError."""
    try:
        return 200, FHIR, _dumps(fn(book, params))
    except fhir.FhirError as exc:
        return exc.status, FHIR, _dumps(fhir.outcome(exc.message, exc.code))


# ====================================================================== fast paths
def _fast_routes(books: Books, cache: ResponseCache) -> dict[str, Any]:
    """GET $lookup and /search answered straight from the Guard (no framework routing).

    The hot reads under load: they parse the query string themselves and answer only a
    well-formed request; anything else returns None and goes to the FastAPI route, which
    validates it and gives the error. Same functions, same responses, same cache keys.
    """
    def items(query: bytes) -> list[tuple[str, str]]:
        """``parse_qsl(query, keep_blank_values=True)`` (what Starlette does), without its overheads."""
        out = []
        for part in query.decode("latin-1").split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            if "+" in part:
                k, v = k.replace("+", " "), v.replace("+", " ")
            if "%" in part:
                k, v = unquote(k), unquote(v)
            out.append((k, v))
        return out

    async def lookup(query: bytes) -> tuple[int, bytes, bytes] | None:
        hit = _fhir_op(fhir.lookup, books.get(), fhir.Params.from_query(items(query)))
        if hit[0] in (200, 404) and cache.enabled:
            cache.put(ResponseCache.key("/fhir/CodeSystem/$lookup", query), hit)
        return hit

    search_mod: list[Any] = []

    async def search(query: bytes) -> tuple[int, bytes, bytes] | None:
        args: dict[str, str] = {}
        for k, v in items(query):
            if k in args:
                return None
            args[k] = v
        q, system = args.get("q", ""), args.get("system")
        limit, offset = _small_int(args.get("limit", "20"), 1, 200), _small_int(args.get("offset", "0"), 0, 10_000)
        if not 1 <= len(q) <= 200 or limit is None or offset is None or (system is not None and system not in SYSTEMS):
            return None
        try:
            day = _parse_date(args.get("date"))
        except ApiError:
            return None
        if day not in books.search_ready:
            return None
        if not search_mod:
            search_mod.append(_optional("search"))
        if search_mod[0] is None:
            return None
        try:
            result = search_mod[0].search(books.get(), q, systems=system, limit=limit, offset=offset,
                                          date=day).as_dict()
        except MedcodesError:
            return None
        if result.get("error"):
            return None
        hit = (200, JSON, _dumps(result))
        if cache.enabled:
            cache.put(ResponseCache.key("/search", query), hit)
        return hit

    return {"/fhir/CodeSystem/$lookup": lookup, "/search": search}


def _small_int(raw: str, lo: int, hi: int) -> int | None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        return None
    n = int(raw)
    return n if lo <= n <= hi else None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


async def _fhir_params(request: Request, raw: bytes) -> fhir.Params:
    """Operation parameters from the query string, a POSTed Parameters resource, or a form."""
    params = fhir.Params.from_query(request.query_params.multi_items())
    if request.method != "POST":
        return params
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qsl, unquote

        for k, v in parse_qsl(raw.decode("utf-8", "replace")):
            params.add(k, v)
        return params
    if ctype not in ("application/fhir+json", "application/json", "application/json+fhir", ""):
        raise fhir.FhirError(415, "not-supported", f"content type {ctype!r}: send application/fhir+json")
    if not raw:
        raise fhir.FhirError(400, "structure", "the request body is empty (expected a Parameters resource)")
    body = _loads(raw, lambda msg: fhir.FhirError(400, "structure", msg))
    body_params = fhir.Params.from_resource(body)
    for name, values in body_params.values.items():
        for v in values:
            params.add(name, v)
    return params


# ====================================================================== the web page's own questions
def _workbench_routes(api: FastAPI, books: Books) -> None:
    """Routes the web page needs beyond the code record: a PCS table with every value's
    definition, the HCPCS modifiers of a release, and a release diff as CSV."""

    @api.get("/pcs/tables/{table}", tags=["codes"],
             summary="An ICD-10-PCS table: its rows and every value's definition")
    async def pcs_table(table: str, date: str | None = None) -> Response:
        from ..systems import icd10pcs

        def run(book: Codebook) -> Any:
            try:
                rec = book.lookup(table, system="icd10pcs", date=date).as_dict()
                db = book.db("icd10pcs", date)
            except MedcodesError as exc:
                raise _book_error(exc) from None
            if rec.get("kind") != "table":
                raise ApiError(404, f"{table!r}: not an ICD-10-PCS table (a table is 3 characters, e.g. 0DT)")
            rec.pop("children", None)  # every code of the table: the rows say the same in less
            rec["value_definitions"] = icd10pcs.table_definitions(rec["code"], db)
            return rec

        return json_response(await _in_thread(books, run))

    @api.get("/hcpcs/modifiers", tags=["codes"], summary="Every HCPCS Level II modifier of the release in effect")
    async def hcpcs_modifiers(date: str | None = None) -> Response:
        def run(book: Codebook) -> Any:
            try:
                db = book.db("hcpcs", date)
            except MedcodesError as exc:
                raise _book_error(exc) from None
            rows = db.conn.execute("SELECT code, title, short_title FROM concept WHERE kind = 'modifier' "
                                   "ORDER BY seq").fetchall()
            return {"release": db.info.release, "modifiers": [
                {"code": r[0], "title": r[1], "short_title": r[2]} for r in rows]}

        return json_response(await _in_thread(books, run))

    @api.get("/diff.csv", tags=["releases"], summary="What changed between two releases, as CSV (one row per change)")
    async def diff_csv(system: str, from_: str = Query(..., alias="from"), to: str = Query(...)) -> Response:
        import csv
        import io

        _check_system(system)
        mod = _optional("diff")
        if mod is None:
            raise ApiError(501, "release diffs are not available in this build (medcodes.diff missing)")

        def run(book: Codebook) -> Any:
            rels = [i.release for i in book.releases(system)]
            for r in (from_, to):
                if r not in rels:
                    raise ApiError(404, f"{system} release {r!r} is not installed (installed: {', '.join(rels)})")
            try:
                d = mod.diff(book, system, from_, to)
            except MedcodesError as exc:
                raise _book_error(exc) from None
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(d.csv_rows())
            return buf.getvalue()

        text = await _in_thread(books, run)
        name = f"medcodes-diff-{system}-{from_}-{to}.csv".replace("/", "_")
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ====================================================================== web page
def _web_routes(api: FastAPI) -> None:
    @api.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    if WEB_DIR.is_dir():
        api.mount("/web", StaticFiles(directory=WEB_DIR), name="web")


def system_names() -> dict[str, str]:
    return {s: SYSTEM_NAMES.get(s, s) for s in SYSTEMS}
