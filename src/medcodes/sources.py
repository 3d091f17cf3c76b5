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
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

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
