"""Finding official release files on disk, inside zips included.

A :class:`Source` is one official file: a plain file, or a member of an
agency zip (named ``outer.zip!member``). Parsers read it through
:meth:`Source.open` / :meth:`Source.text_lines` and never care which it is.
Every source is hashed (sha256) so the store can tell a re-pull of the same
files (a no-op) from new ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

from .errors import DataError
from .model import SourceRef


@dataclass(frozen=True)
class Source:
    path: Path                 # the file on disk (the zip, for a member)
    member: str | None = None  # member name inside the zip

    @property
    def name(self) -> str:
        """File name as the agency ships it (the member's base name for zip members)."""
        return os.path.basename(self.member) if self.member else self.path.name

    @property
    def display(self) -> str:
        return f"{self.path.name}!{self.member}" if self.member else self.path.name

    def open(self) -> IO[bytes]:
        try:
            if self.member is None:
                return open(self.path, "rb")
            zf = zipfile.ZipFile(self.path)
            return zf.open(self.member)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.display}: cannot be read ({_why(exc)})") from exc

    def read_bytes(self) -> bytes:
        try:
            with self.open() as fh:
                return fh.read()
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{self.display}: cannot be read ({_why(exc)})") from exc

    def text_lines(self, encoding: str = "utf-8") -> Iterator[str]:
        """Lines without their endings (CRLF or LF). Falls back to latin-1 for odd bytes."""
        data = self.read_bytes()
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        if text.startswith("\ufeff"):
            text = text[1:]
        return iter(text.splitlines())

    def head(self) -> bytes:
        """The first :data:`HEAD_BYTES` bytes (read once per file state, then remembered).

        Enough to tell what a file is by its content: an XML root element and its
        ``<version>``, or a few hundred records of a fixed-width file.
        """
        key = self._state()
        got = _HEADS.get(key)
        if got is None:
            try:
                with self.open() as fh:
                    got = fh.read(HEAD_BYTES)
            except (OSError, zipfile.BadZipFile, EOFError, DataError):
                got = b""
            if len(_HEADS) >= 1024:  # a long-lived process pulling many folders: stay bounded
                _HEADS.clear()
                _LINES.clear()
            _HEADS[key] = got
        return got

    def head_lines(self) -> list[str]:
        """The text lines of :meth:`head` (the last, maybe cut, line dropped); [] for binary files."""
        data = self.head()
        key = self._state()
        got = _LINES.get(key)
        if got is not None:
            return got
        if not data or data.startswith((b"PK", b"%PDF", b"\xd0\xcf\x11\xe0")) or b"\0" in data[:4096]:
            got = []
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            lines = text.lstrip("\ufeff").splitlines()
            got = lines[:-1] if len(data) == HEAD_BYTES and len(lines) > 1 else lines
        _LINES[key] = got
        return got

    def xml_root(self) -> tuple[str, str] | None:
        """(root element name, text of its ``<version>`` child or '') for an XML file, else None."""
        data = self.head().lstrip(b"\xef\xbb\xbf \t\r\n")
        if not data.startswith(b"<"):
            return None
        m = _ROOT.search(data)
        if m is None:
            return None
        v = _VERSION.search(data, m.end())
        return m.group(1).decode("ascii"), (v.group(1).decode("ascii") if v else "")

    def years(self) -> list[int]:
        """Four-digit years in the file's name, then its zip's name, then its folders (nearest first).

        Where a file does not state its version itself (order files, GEMs), the agency's
        names and folders do.
        """
        parts = [self.name]
        if self.member:
            parts += [os.path.dirname(self.member), self.path.name]
        parts += [p for p in reversed(self.path.parent.parts)]
        return [int(y) for part in parts for y in _YEAR.findall(part)]

    def _state(self) -> tuple[str, str | None, int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (str(self.path), self.member, -1, -1)
        return (str(self.path), self.member, st.st_mtime_ns, st.st_size)

    def ref(self) -> SourceRef:
        """Name, sha256 and size (hashed once per file state, then remembered)."""
        st = self.path.stat()
        cache_key = (str(self.path), self.member, st.st_mtime_ns, st.st_size)
        ref = _REFS.get(cache_key)
        if ref is None:
            data = self.read_bytes()
            ref = _REFS[cache_key] = SourceRef(self.display, hashlib.sha256(data).hexdigest(), len(data))
        return ref


_REFS: dict[tuple[str, str | None, int, int], SourceRef] = {}
_HEADS: dict[tuple[str, str | None, int, int], bytes] = {}
_LINES: dict[tuple[str, str | None, int, int], list[str]] = {}

#: How much of a file is read to recognise it by content.
HEAD_BYTES = 64 * 1024
# the first element after the XML declaration, comments and processing instructions
_ROOT = re.compile(rb"^(?:\s*<\?.*?\?>|\s*<!--.*?-->|\s*<!DOCTYPE[^>]*>)*\s*<([A-Za-z_][\w.\-]*)[\s>/]", re.S)
_VERSION = re.compile(rb"<version>\s*([\w.\-]{1,20})\s*</version>")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def scan(root: str | os.PathLike[str]) -> list[Source]:
    """Every file under ``root`` (recursively), with the members of every zip."""
    base = Path(root)
    if not base.exists():
        raise DataError(f"{root}: no such file or directory")
    paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    found: list[Source] = []
    for p in paths:
        if p.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(p) as zf:
                    for info in zf.infolist():
                        if not info.is_dir():
                            found.append(Source(p, info.filename))
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{p}: not a readable zip file ({_why(exc)})") from exc
        else:
            found.append(Source(p))
    return found


# ------------------------------------------------------------ recognising files
@dataclass(frozen=True)
class FileKind:
    """One kind of agency file, recognised by its content and, failing that, by its name.

    ``content(source)`` looks at :meth:`Source.head` (root element and version of an
    XML file, record layout of a text file) and returns the version the content
    states ('' when it states none), or None when the file is not of this kind.
    ``name`` is the agency's file name pattern (group ``year`` or ``version`` for the one in it):
    the fallback for files whose content cannot be sniffed cheaply (Excel workbooks).
    """

    kind: str
    content: Callable[[Source], str | None] | None = None
    name: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Found:
    kind: str
    source: Source
    version: str      # from the content, else the file name, else a year in its zip/folder names; '' if none
    by: str           # "content" or "name"

    @property
    def year(self) -> int | None:
        m = re.search(r"\d{4}", self.version)
        return int(m.group(0)) if m else None


def recognise(found: Sequence[Source], kinds: Sequence[FileKind]) -> list[Found]:
    """Which of ``kinds`` each source is: by content first, then by the agency's file name.

    A file is one kind at most (the first in ``kinds`` whose content test accepts it).
    """
    out: list[Found] = []
    for src in found:
        hit: Found | None = None
        for k in kinds:
            if k.content is not None:
                v = k.content(src)
                if v is not None:
                    hit = Found(k.kind, src, v or _name_version(src, k), "content")
                    break
        if hit is None:
            for k in kinds:
                if k.name is not None and k.name.match(src.name):
                    hit = Found(k.kind, src, _name_version(src, k), "name")
                    break
        if hit is not None:
            out.append(hit)
    return out


def _name_version(src: Source, kind: FileKind) -> str:
    m = kind.name.match(src.name) if kind.name is not None else None
    named = m.groupdict() if m is not None else {}
    if named.get("version") or named.get("year"):
        return named.get("version") or named["year"]
    years = src.years()
    return str(years[0]) if years else ""


def xml_kind(root: str) -> Callable[[Source], str | None]:
    """A content test: the file is XML with root element ``root``; its ``<version>`` is the version."""
    def test(src: Source) -> str | None:
        got = src.xml_root()
        return got[1] if got is not None and got[0] == root else None
    return test


def records(src: Source, limit: int = 400) -> list[str]:
    """Up to ``limit`` non-blank lines of the head (trailing blanks stripped), for record-layout tests."""
    out = []
    for line in src.head_lines():
        if line.strip():
            out.append(line.rstrip())
            if len(out) >= limit:
                break
    return out


def all_match(pattern: re.Pattern[str], lines: list[str], at_least: int = 3) -> list[re.Match[str]] | None:
    """Matches of ``pattern`` on every line, or None unless every line (and at least ``at_least``) match."""
    if len(lines) < at_least:
        return None
    got = []
    for line in lines:
        m = pattern.match(line)
        if m is None:
            return None
        got.append(m)
    return got
