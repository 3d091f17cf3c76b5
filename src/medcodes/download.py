"""Downloading an official release from the agencies and installing it (``medcodes pull SYSTEM RELEASE``).

For one :mod:`~medcodes.catalogue` entry, every official file is fetched over
HTTPS (httpx) into ``<home>/downloads/<system>/<release>/``:

* the body streams into ``<name>.part``; an interrupted transfer resumes with
  an HTTP ``Range`` request from the bytes already on disk;
* connection errors and 5xx answers are retried with exponential backoff;
  4xx answers fail at once;
* a known size and sha256 are checked, a zip must open and hold the members
  the catalogue expects; only then is ``.part`` renamed to the file's name;
* when every file is there, :func:`medcodes.releases.pull_from_dir` parses
  and installs them in one store transaction.

Any failure raises :class:`DownloadError` (one line naming the URL or file)
before the store is touched, so the installed releases stay as they were.
``base_url`` (or the ``MEDCODES_MIRROR`` environment variable) sends every
request to another host, keeping the official URL path: a local mirror, or
the test server.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import click
import httpx

from . import catalogue as _catalogue
from .catalogue import OfficialFile
from .errors import MedcodesError
from .releases import PullReport, pull_from_dir
from .store import Store

MIRROR_ENV = "MEDCODES_MIRROR"
USER_AGENT = "medcodes (offline medical code engine; https://github.com/)"


class DownloadError(MedcodesError):
    """An official file could not be fetched or is not the file the catalogue describes."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed transfer."""

    attempts: int = 5          # total tries per file
    backoff: float = 1.0       # seconds before the 2nd try; doubles each time
    max_backoff: float = 30.0
    timeout: float = 60.0      # per network operation (connect / read)


@dataclass
class DownloadReport:
    """What :func:`download_release` did."""

    system: str
    release: str
    files: list[Path] = field(default_factory=list)
    fetched_bytes: int = 0
    resumed: int = 0           # transfers that continued a .part file
    retries: int = 0
    pull: PullReport | None = None


def mirror_url(url: str, base_url: str | None) -> str:
    """``url`` on another host: ``base_url`` + the official path (and query)."""
    if not base_url:
        return url
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return base_url.rstrip("/") + tail


def download_dir(store: Store, system: str, release: str) -> Path:
    return store.home / "downloads" / system / release


def download_release(
    store: Store,
    system: str,
    release: str,
    *,
    base_url: str | None = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> DownloadReport:
    """Fetch every file of a catalogued release, verify it, and install it atomically."""
    report = fetch_release(store, system, release, base_url=base_url, progress=progress,
                           retry=retry, force=force, log=log)
    report.pull = pull_from_dir(store, download_dir(store, system, release), systems={system}, force=force)
    return report


def fetch_release(
    store: Store,
    system: str,
    release: str,
    *,
    base_url: str | None = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> DownloadReport:
    """Only the download half of :func:`download_release`: verified files in :func:`download_dir`."""
    entry = _catalogue.get(system, release)
    base = base_url if base_url is not None else os.environ.get(MIRROR_ENV) or None
    policy = retry or RetryPolicy()
    target = download_dir(store, system, release)
    target.mkdir(parents=True, exist_ok=True)
    report = DownloadReport(system, release)
    with httpx.Client(timeout=policy.timeout, follow_redirects=True,
                      headers={"User-Agent": USER_AGENT}) as client:
        for official in entry.files:
            path = target / official.name
            if not force and path.exists() and _is_good(path, official):
                report.files.append(path)
                continue
            _fetch(client, mirror_url(official.url, base), official, path, policy, progress, report, log)
            report.files.append(path)
    return report


# ----------------------------------------------------------------------------- fetching
def _fetch(client: httpx.Client, url: str, official: OfficialFile, path: Path, policy: RetryPolicy,
           progress: bool, report: DownloadReport, log: Callable[[str], None] | None) -> None:
    """Download ``url`` to ``path`` (through ``path.part``), retrying and resuming as needed."""
    part = path.with_name(path.name + ".part")
    delay = policy.backoff
    for attempt in range(1, policy.attempts + 1):
        try:
            _transfer(client, url, official, part, progress, report)
            break
        except _Retryable as exc:
            if attempt == policy.attempts:
                raise DownloadError(f"{url}: failed after {attempt} attempts ({exc})") from None
            report.retries += 1
            if log:
                log(f"{url}: {exc}; retrying in {delay:g}s")
            time.sleep(delay)
            delay = min(delay * 2, policy.max_backoff)
    _verify(part, official, url)
    os.replace(part, path)


class _Retryable(Exception):
    """A transfer error worth another try (network trouble, 5xx)."""


def _transfer(client: httpx.Client, url: str, official: OfficialFile, part: Path,
              progress: bool, report: DownloadReport) -> None:
    """One HTTP GET, appending to ``part`` from where it stops. Raises _Retryable or DownloadError."""
    have = part.stat().st_size if part.exists() else 0
    if official.size is not None and have == official.size:
        return
    if official.size is not None and have > official.size:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 416 and have:
                part.unlink()  # our partial file does not fit the server's: start over
                raise _Retryable(f"HTTP 416 resuming at byte {have}")
            if resp.status_code >= 500:
                raise _Retryable(f"HTTP {resp.status_code}")
            if resp.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
            resumed = resp.status_code == 206 and have > 0
            if not resumed:
                have = 0
            else:
                report.resumed += 1
            total = _expected_total(resp, have, official)
            _stream_to(part, resp.iter_bytes(), append=resumed, start=have, total=total,
                       label=official.name, progress=progress, report=report)
            if total is not None and part.stat().st_size < total:
                raise _Retryable(f"connection closed at byte {part.stat().st_size} of {total}")
    except httpx.TransportError as exc:
        raise _Retryable(_one_line(exc)) from exc


def _expected_total(resp: httpx.Response, have: int, official: OfficialFile) -> int | None:
    """The full file size as the server states it (Content-Range / Content-Length)."""
    crange = resp.headers.get("Content-Range", "")
    if resp.status_code == 206 and "/" in crange:
        tail = crange.rsplit("/", 1)[1]
        if tail.isdigit():
            return int(tail)
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + (have if resp.status_code == 206 else 0)
    return official.size


def _stream_to(part: Path, chunks: Iterator[bytes], *, append: bool, start: int, total: int | None,
               label: str, progress: bool, report: DownloadReport) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    with open(part, "ab" if append else "wb") as out:
        if not progress:
            for chunk in chunks:
                out.write(chunk)
                report.fetched_bytes += len(chunk)
            return
        with click.progressbar(length=total or 0, label=label, file=sys.stderr,
                               show_pos=total is None) as bar:
            if start:
                bar.update(start)
            for chunk in chunks:
                out.write(chunk)
                report.fetched_bytes += len(chunk)
                bar.update(len(chunk))


# ----------------------------------------------------------------------------- checking
def _verify(part: Path, official: OfficialFile, url: str) -> None:
    """Size, sha256 and zip contents; a bad file is deleted so the next pull starts clean."""
    try:
        problem = _problem(part, official)
    except OSError as exc:
        problem = f"cannot be read ({_one_line(exc)})"
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: {problem}")


def _problem(path: Path, official: OfficialFile) -> str | None:
    size = path.stat().st_size
    if official.size is not None and size != official.size:
        return f"{official.name} is {size:,} bytes, expected {official.size:,} (truncated or re-issued)"
    if official.sha256:
        digest = _sha256(path)
        if digest != official.sha256:
            return f"{official.name} sha256 {digest[:12]}... does not match the catalogue's {official.sha256[:12]}..."
    if official.name.lower().endswith(".zip"):
        return _zip_problem(path, official)
    return None


def _zip_problem(path: Path, official: OfficialFile) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = {os.path.basename(n) for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"{official.name} is not a readable zip ({_one_line(exc)})"
    if bad:
        return f"{official.name}: member {bad} is corrupt"
    missing = [m for m in official.members if m not in names]
    if missing:
        return f"{official.name} lacks the expected member(s) {', '.join(missing)}"
    return None


def _is_good(path: Path, official: OfficialFile) -> bool:
    """A file already downloaded earlier that still passes every check."""
    try:
        return _problem(path, official) is None
    except OSError:
        return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
