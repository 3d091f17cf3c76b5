"""The compiled, versioned local store: one SQLite file per (system, release).

Layout under ``MEDCODES_HOME`` (default: the user data dir)::

    store/<system>/<release>.sqlite

Each file holds a ``meta`` table (what release this is, the official files it
came from with their sha256, the counts the parser checked), a ``concept``
table (every code, header, chapter, modifier ...) and any extra tables the
parser asked for. Files are written under a temporary name and moved into
place with :func:`os.replace`, so a failed build never touches what is
installed. All reads in medcodes go through :class:`Store` and :class:`ReleaseDB`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import gc
import json
import operator
import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .model import ReleaseBuild, ReleaseInfo

SCHEMA_VERSION = 1
_ROW_CACHE = 20000  # rows kept per open release (a few MB); cleared when full
_KEY, _KIND, _PARENT, _SEQ = 0, 2, 6, 7  # columns of a concept row (the order of _CONCEPT_DDL)
_READ_WHOLE = 2000  # a release read row by row this often is read whole (bulk use: all codes' records)
_GROUPS = frozenset({"chapter", "block", "section"})  # kinds of rows that group codes
_WALK_READS = 256  # ... or this often, when most of those reads were of rising keys (a walk in code order)

_CONCEPT_DDL = """
CREATE TABLE concept (
    key TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    short_title TEXT,
    billable INTEGER,
    parent TEXT,
    seq INTEGER NOT NULL,
    attrs TEXT
) WITHOUT ROWID;
"""


def default_home() -> Path:
    env = os.environ.get("MEDCODES_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("medcodes", appauthor=False))


class StoreError(Exception):
    """A problem with the local store (missing, unreadable, wrong version)."""


class Store:
    """The set of installed releases under one home directory."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.root = self.home / "store"
        self._infos: list[ReleaseInfo] | None = None
        self._open: dict[tuple[str, str], ReleaseDB] = {}
        self.generation = 0  # bumped whenever the set of installed releases changes

    # ------------------------------------------------------------------ reading
    def releases(self, system: str | None = None) -> list[ReleaseInfo]:
        """Installed releases, oldest first within each system."""
        if self._infos is None:
            infos = self._scan()
            infos.sort(key=lambda i: (i.system, i.effective_from, i.release))
            self._infos = infos
        if system is None:
            return list(self._infos)
        return [i for i in self._infos if i.system == system]

    def _scan(self) -> list[ReleaseInfo]:
        """Every release file's meta, through ``store/index.json`` (a cache keyed by file size
        and mtime, so start-up opens no SQLite file that has not changed)."""
        if not self.root.is_dir():
            return []
        index_path = self.root / "index.json"
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        fresh: dict[str, Any] = {}
        infos = []
        for path in sorted(self.root.glob("*/*.sqlite")):
            st = path.stat()
            sig = [st.st_mtime_ns, st.st_size]
            entry = index.get(str(path))
            if entry and entry.get("sig") == sig:
                info = _info_from_meta(entry["meta"], path)
            else:
                try:
                    info = _read_info(path)
                except (sqlite3.Error, KeyError, ValueError):
                    continue  # a foreign or damaged file is not a release
            fresh[str(path)] = {"sig": sig, "meta": {**info.as_dict(), "schema_version": SCHEMA_VERSION}}
            infos.append(info)
        if fresh != index:
            try:
                tmp = index_path.with_suffix(f".pid{os.getpid()}.tmp")
                tmp.write_text(json.dumps(fresh))
                os.replace(tmp, index_path)
            except OSError:
                pass  # a read-only store still works, only slower to open
        return infos

    def find(self, system: str, release: str) -> ReleaseInfo | None:
        for info in self.releases(system):
            if info.release == release:
                return info
        return None

    def open(self, system: str, release: str) -> "ReleaseDB":
        key = (system, release)
        db = self._open.get(key)
        if db is None:
            info = self.find(system, release)
            if info is None:
                raise StoreError(f"{system} release {release} is not installed")
            db = ReleaseDB(info)
            self._open[key] = db
        return db

    def close(self) -> None:
        for db in self._open.values():
            db.close()
        self._open.clear()

    # ------------------------------------------------------------------ writing
    def path_for(self, system: str, release: str) -> Path:
        return self.root / system / f"{release}.sqlite"

    def is_current(self, system: str, release: str, sources: list[dict[str, Any]]) -> bool:
        """True when that release is installed from exactly these source files."""
        info = self.find(system, release)
        if info is None:
            return False
        have = sorted((s["name"].rsplit("/", 1)[-1], s["sha256"]) for s in info.sources)
        want = sorted((s["name"].rsplit("/", 1)[-1], s["sha256"]) for s in sources)
        return have == want

    def install(self, build: ReleaseBuild) -> ReleaseInfo:
        """Write one release atomically (see :meth:`transaction` for several)."""
        with self.transaction() as txn:
            txn.stage(build)
        info = self.find(build.system, build.release)
        assert info is not None
        return info

    def transaction(self) -> "Transaction":
        """Stage several releases; all are moved into place only if every build succeeds."""
        return Transaction(self)

    def clean_stale(self) -> list[Path]:
        """Remove the temporary files a killed pull left (those of processes no longer alive).

        Returns the files removed. Files of a pull still running (its process is alive) stay.
        """
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for path in [*self.root.glob("*/.*.tmp"), *self.root.glob("index.*.tmp")]:
            m = _TMP_PID.search(path.name)
            pid = int(m.group(1)) if m else None
            if pid is not None and _alive(pid):
                continue
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
        return removed


class Transaction:
    """Builds release files under temporary names; ``commit`` moves them all into place."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.staged: list[tuple[Path, Path, str, str]] = []

    def reserve(self, system: str, release: str) -> Path:
        """A temporary file beside the release's final place; committed or removed with the rest.

        Its name carries this process's id (``.<release>.pid<pid>.<random>.tmp``) so that a later
        pull can tell the leftovers of a killed pull from the files of one still running.
        """
        target = self.store.path_for(system, release)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{release}.pid{os.getpid()}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        self.staged.append((Path(tmp), target, system, release))
        return Path(tmp)

    def discard(self, tmp: Path) -> None:
        """Drop one reserved file (its build failed); the rest stay staged."""
        for item in [x for x in self.staged if x[0] == tmp]:
            self.staged.remove(item)
            tmp.unlink(missing_ok=True)

    def stage(self, build: ReleaseBuild) -> None:
        write_release(self.reserve(build.system, build.release), build)

    def commit(self) -> None:
        for tmp, target, system, release in self.staged:
            db = self.store._open.pop((system, release), None)
            if db is not None:
                db.close()
            # mkstemp makes 0600 files: give the release the mode of any file the user creates
            # (0644 with the usual umask), so a service account can read a store its admin pulled
            os.chmod(tmp, file_mode())
            os.replace(tmp, target)
        self.staged.clear()
        self.store._infos = None
        self.store.generation += 1

    def rollback(self) -> None:
        for tmp, _target, _s, _r in self.staged:
            try:
                tmp.unlink()
            except OSError:
                pass
        self.staged.clear()

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()


class ReleaseDB:
    """Read access to one installed release."""

    def __init__(self, info: ReleaseInfo) -> None:
        self.info = info
        uri = Path(info.path).resolve().as_uri() + "?mode=ro"
        self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self._rows: dict[str, sqlite3.Row | None] = {}
        self._chains: dict[str, list[sqlite3.Row]] = {}
        self._reads = 0                                            # rows read one by one
        self._rising, self._highest = 0, ""                        # ... of codes above every earlier one
        self._whole: dict[str, tuple[Any, ...]] | None = None      # every row, once read whole
        self._kids: dict[str, tuple[tuple[Any, ...], ...]] | None = None  # parent -> children, then
        self._described: sqlite3.Cursor | None = None
        self._memo: dict[tuple[str, str], Any] = {}                # per-parent facts systems derive (memo)

    def close(self) -> None:
        self.conn.close()

    def get(self, key: str) -> sqlite3.Row | None:
        """The concept row with this key.

        Rows are cached (ancestors are shared by many codes). A release read row
        by row more than ``_READ_WHOLE`` times is read whole, once, with its
        parent -> children lists: a caller walking every code (all records,
        a batch) then costs no query per code. A walk in code order is seen
        sooner: when most of the first ``_WALK_READS`` keys read each rise above
        every key before them (random lookups almost never do), the release is
        read whole then.
        """
        whole = self._whole
        if whole is not None:
            data = whole.get(key)
            return None if data is None else sqlite3.Row(self._described, data)
        try:
            return self._rows[key]
        except KeyError:
            pass
        self._reads += 1
        if self._reads > _READ_WHOLE or (self._reads == _WALK_READS and 2 * self._rising > _WALK_READS):
            self.read_whole()
            return self.get(key)
        row = self.conn.execute("SELECT * FROM concept WHERE key = ?", (key,)).fetchone()
        # a walk over the codes reads mostly keys above every code read before (chapters, blocks
        # and sections, read as ancestors, have keys of their own kind: "CHAPTER1" > "C00")
        if row is not None and key > self._highest and row[_KIND] not in _GROUPS:
            self._highest = key
            self._rising += 1
        if len(self._rows) >= _ROW_CACHE:
            self._rows.clear()
        self._rows[key] = row
        return row

    def read_whole(self) -> None:
        """Keep every concept row in memory, and each row's children (one query).

        Held as plain tuples, which the cyclic GC stops tracking: ~100,000 ``sqlite3.Row``
        objects kept for good would be scanned by every full collection of the process (a
        fifth of the time of a first walk over every code). :meth:`get` and :meth:`children`
        wrap a tuple in a ``sqlite3.Row`` when asked (40 ns).
        """
        if self._whole is not None:
            return
        cur = self.conn.cursor()
        cur.row_factory = None
        rows: dict[str, tuple[Any, ...]] = {}
        kids: dict[str, list[tuple[Any, ...]]] = {}
        paused = gc.isenabled()
        gc.disable()                # nothing to collect here, and the young dict would be scanned often
        try:
            # in key order (the table's own: no sort in SQLite); children put in release order below
            for data in cur.execute("SELECT * FROM concept"):
                rows[data[_KEY]] = data
                parent = data[_PARENT]
                if parent:
                    kids.setdefault(parent, []).append(data)
        finally:
            if paused:
                gc.enable()
        self._described = cur                       # the cursor whose description names the columns
        seq = operator.itemgetter(_SEQ)
        self._kids = {k: tuple(sorted(v, key=seq)) if len(v) > 1 else tuple(v) for k, v in kids.items()}
        self._whole = rows
        self._rows = {}

    def children(self, key: str) -> list[sqlite3.Row]:
        if self._kids is not None:
            cur = self._described
            return [sqlite3.Row(cur, data) for data in self._kids.get(key, ())]
        return self.conn.execute(
            "SELECT * FROM concept WHERE parent = ? ORDER BY seq", (key,)
        ).fetchall()

    def memo(self, name: str, key: str, make: Any) -> Any:
        """``make()`` computed once per (name, key) for this release, e.g. the notes a
        parent passes down to every code under it. Treat the value as read-only."""
        try:
            return self._memo[name, key]
        except KeyError:
            pass
        if len(self._memo) >= 4 * _ROW_CACHE:
            self._memo.clear()
        value = self._memo[name, key] = make()
        return value

    def ancestors(self, row: sqlite3.Row) -> list[sqlite3.Row]:
        """Parent chain from the top down (not including ``row``)."""
        parent = row["parent"]
        if not parent:
            return []
        chain = self._chains.get(parent)
        if chain is None:
            chain = []
            seen = set()
            key = parent
            while key and key not in seen:
                seen.add(key)
                prow = self.get(key)
                if prow is None:
                    break
                chain.append(prow)
                key = prow["parent"]
            chain.reverse()
            if len(self._chains) >= _ROW_CACHE and self._kids is None:
                self._chains.clear()
            self._chains[parent] = chain
        return list(chain)

    def prefix(self, prefix: str, limit: int = 50, kinds: tuple[str, ...] | None = None) -> list[sqlite3.Row]:
        """Rows whose key starts with ``prefix``, in the release's own order."""
        hi = prefix + "\uffff"
        sql = "SELECT * FROM concept WHERE key >= ? AND key < ?"
        args: list[Any] = [prefix, hi]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return self.conn.execute(sql, args).fetchall()

    def neighbours(self, key: str, n: int = 3) -> list[sqlite3.Row]:
        """Existing codes nearest ``key`` in sort order (for 'did you mean')."""
        below = self.conn.execute(
            "SELECT * FROM concept WHERE key < ? AND kind NOT IN ('chapter','block','section') "
            "ORDER BY key DESC LIMIT ?", (key, n)).fetchall()
        above = self.conn.execute(
            "SELECT * FROM concept WHERE key > ? AND kind NOT IN ('chapter','block','section') "
            "ORDER BY key LIMIT ?", (key, n)).fetchall()
        return list(reversed(below)) + list(above)

    def has_table(self, name: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
        ).fetchone() is not None


# ".2026.pid12345.abcd1234.tmp" (a release being built) or "index.pid12345.tmp" (the index cache)
_TMP_PID = re.compile(r"\.pid(\d+)\.")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


@functools.lru_cache(maxsize=1)
def file_mode() -> int:
    """The mode a new file gets under the process's umask (0644 with the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def row_attrs(row: sqlite3.Row) -> dict[str, Any]:
    """A row's system fields. Shared and cached: treat the dict as read-only."""
    raw = row["attrs"]
    return _parse_attrs(raw) if raw else {}


def parse_attrs(raw: str | None) -> dict[str, Any]:
    """:func:`row_attrs` from the ``attrs`` column's text (shared and cached: read-only)."""
    return _parse_attrs(raw) if raw else {}


@functools.lru_cache(maxsize=_ROW_CACHE)
def _parse_attrs(raw: str) -> Any:
    # orjson parses these small objects 6x faster than json (a walk over every record parses
    # ~57,000 of them); imported on first use, so a one-code CLI lookup does not load it
    return _orjson_loads()(raw)


@functools.lru_cache(maxsize=1)
def _orjson_loads() -> Any:
    import orjson

    return orjson.loads


# ---------------------------------------------------------------------- helpers
def _read_info(path: Path) -> ReleaseInfo:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    for k in ("sources", "counts", "notes"):
        meta[k] = json.loads(meta.get(k) or "[]")
    return _info_from_meta(meta, path)


def _info_from_meta(meta: dict[str, Any], path: Path) -> ReleaseInfo:
    if int(meta.get("schema_version", "0")) != SCHEMA_VERSION:
        raise ValueError("schema version")
    eff_to = meta.get("effective_to")
    return ReleaseInfo(
        system=meta["system"],
        release=meta["release"],
        label=meta["label"],
        effective_from=_dt.date.fromisoformat(meta["effective_from"]),
        effective_to=_dt.date.fromisoformat(eff_to) if eff_to else None,
        sources=tuple(meta["sources"]),
        counts=dict(meta["counts"]),
        notes=tuple(meta["notes"]),
        path=str(path),
    )


def write_release(path: Path, build: ReleaseBuild) -> None:
    """Write one release file (normally through :meth:`Transaction.stage`)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute(_CONCEPT_DDL)

        def rows() -> Iterator[tuple[Any, ...]]:
            for seq, c in enumerate(build.concepts):
                yield (
                    c.key, c.code, c.kind, c.title, c.short_title,
                    None if c.billable is None else int(c.billable),
                    c.parent, seq,
                    json.dumps(c.attrs, separators=(",", ":"), ensure_ascii=False) if c.attrs else None,
                )

        conn.executemany("INSERT INTO concept VALUES (?,?,?,?,?,?,?,?,?)", rows())
        conn.execute("CREATE INDEX concept_parent ON concept(parent, seq)")
        for name, table in build.tables.items():
            cols = ", ".join(f'"{c}"' for c in table.columns)
            conn.execute(f'CREATE TABLE "{name}" ({cols})')
            marks = ",".join("?" * len(table.columns))
            conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', table.rows)
            for i, idx in enumerate(table.indexes):
                icols = ", ".join(f'"{c}"' for c in idx)
                conn.execute(f'CREATE INDEX "{name}_i{i}" ON "{name}" ({icols})')
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "system": build.system,
            "release": build.release,
            "label": build.label,
            "effective_from": build.effective_from.isoformat(),
            "effective_to": build.effective_to.isoformat() if build.effective_to else "",
            "sources": json.dumps([s.as_dict() for s in build.sources]),
            "counts": json.dumps(build.counts),
            "notes": json.dumps(build.notes),
            "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()
