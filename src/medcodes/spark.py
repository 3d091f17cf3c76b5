"""The claim rules and code annotations on Apache Spark (``pip install "medcodes[spark]"``).

    >>> from medcodes import spark as mspark
    >>> findings = mspark.check_lines(lines_df)                       # one row per finding
    >>> annotated = mspark.annotate(lines_df, "line_code", "hcpcs")   # + validity, billability, title

``check_lines`` takes a Spark DataFrame in the batch layout (the claim-lines CSV
columns, docs/claims.md) and returns the findings batch mode gives on one
machine: ``claim_id``, ``line``, ``rule``, ``severity``, ``location``,
``codes``, ``message``, ``source``. Rows are repartitioned by claim id (a
claim's lines in one partition, in file order) and every partition is checked
with ``mapInArrow`` by :func:`medcodes.claims.batch.check_frames` -- the same
rules, the same precompiled code tables, a few Polars joins per Arrow batch,
never a Python call per row.

Executors open the store once per Python worker process, from ``home`` (a path
every executor can read: the driver's store in local mode, a shared file
system on a cluster) or from a store archive shipped with the job
(:func:`ship_store`, which adds it with ``SparkContext.addFile``; executors
unpack it once from ``SparkFiles``). See docs/spark.md for spark-submit.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

FINDINGS_DDL = ("claim_id string, line long, rule string, severity string, location string, codes string, "
                "message string, source string")
_ROW = "__medcodes_row"
_books: dict[str, Any] = {}
_lock = threading.Lock()


def _spark() -> Any:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:   # pragma: no cover - the extra is missing
        from .errors import MedcodesError

        raise MedcodesError('Spark is not installed: pip install "medcodes[spark]"') from exc
    return pyspark


# ====================================================================== the store on executors
def ship_store(spark: Any, home: str | os.PathLike[str]) -> str:
    """Pack ``home``'s store and precompiled facts into one archive, add it to the job; its name.

    Pass the name as ``archive=`` to :func:`check_lines` / :func:`annotate`: each executor
    unpacks it once (per Python worker process) from ``SparkFiles``.
    """
    home = Path(home)
    tmp = Path(tempfile.mkdtemp(prefix="medcodes-ship-"))
    name = "medcodes-store.tar"
    with tarfile.open(tmp / name, "w") as tar:
        for sub in ("store", "facts"):
            if (home / sub).is_dir():
                tar.add(home / sub, arcname=sub)
    spark.sparkContext.addFile(str(tmp / name))
    return name


def _open_book(home: str | None, archive: str | None) -> Any:
    """The Codebook of this worker process (opened once; unpacked from SparkFiles once)."""
    key = f"{home}|{archive}"
    with _lock:
        book = _books.get(key)
        if book is None:
            if archive:
                from pyspark import SparkFiles

                target = Path(tempfile.gettempdir()) / f"medcodes-{os.getpid()}-{Path(archive).stem}"
                if not target.is_dir():
                    with tarfile.open(SparkFiles.get(archive)) as tar:
                        tar.extractall(target, filter="data")
                home = str(target)
            from .codebook import Codebook

            book = _books[key] = Codebook.open(home=home, embedded=False)
        return book


def _default_home(home: str | os.PathLike[str] | None) -> str | None:
    if home is not None:
        return str(home)
    from .store import default_home

    return str(default_home())


# ====================================================================== check_lines
def _check_partition(home: str | None, archive: str | None, chunk_rows: int):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import polars as pl

        from .claims.batch import check_frames, read_lines, tables, whole_claims
        from .claims.check import checker

        book = _open_book(home, archive)
        tabs = tables(checker(book))
        frames = (pl.from_arrow(b).drop(_ROW) for b in batches)   # type: ignore[union-attr]
        for frame, row0 in whole_claims(frames, chunk_rows):
            claims, lines = read_lines(frame, where="claim lines", row0=row0)
            found = check_frames(tabs, claims, lines)
            if found.height:
                yield from found.to_arrow().to_batches()
    return run


def check_lines(df: Any, home: str | os.PathLike[str] | None = None, archive: str | None = None,
                partitions: int | None = None, chunk_rows: int = 100_000) -> Any:
    """Findings of every claim of a Spark DataFrame of claim lines, as a Spark DataFrame.

    ``home``: the store's path on the executors (default: this process's MEDCODES_HOME);
    ``archive``: a name from :func:`ship_store` instead. ``partitions``: how many partitions to
    spread the claims over (default: the DataFrame's own).
    """
    _spark()
    from pyspark.sql import functions as F

    keyed = df.withColumn(_ROW, F.monotonically_increasing_id())
    n = partitions or df.rdd.getNumPartitions()
    keyed = keyed.repartition(n, "claim_id").sortWithinPartitions("claim_id", _ROW)
    return keyed.mapInArrow(_check_partition(None if archive else _default_home(home), archive, chunk_rows),
                            FINDINGS_DDL)


# ====================================================================== annotate
_SYSTEMS = ("icd10cm", "icd10pcs", "hcpcs")


def _annotate_partition(home: str | None, archive: str | None, column: str, system: str, date_column: str):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import polars as pl

        from .claims.batch import _norm, tables
        from .claims.check import checker

        book = _open_book(home, archive)
        tabs = tables(checker(book))
        for b in batches:
            df = pl.from_arrow(b)
            yield from annotate_frame(tabs, df, column, system, date_column).to_arrow().to_batches()
    return run


def annotate_frame(tabs: Any, df: Any, column: str, system: str, date_column: str = "service_date") -> Any:
    """``df`` (Polars) plus ``<column>_valid``, ``<column>_billable``, ``<column>_title`` on each row's date.

    Valid: the code is in the release in effect on the date (HCPCS: and not terminated before it).
    Billable: a complete code one may bill (not a header). One join per release, per batch.
    """
    import polars as pl

    from .claims.batch import _as_date, _norm
    from .claims.codefacts import code_table

    day = _as_date(df, date_column).alias("__day")
    work = df.with_columns(day, _norm(pl.col(column).cast(pl.String)).alias("__key"))
    rel = tabs.releases(work["__day"], system)
    work = work.join(rel.select(pl.col("day").alias("__day"), pl.col("release").alias("__rel")), on="__day",
                     how="left")
    releases = [r for r in rel["release"].unique().to_list() if r is not None]
    tab = pl.concat([tabs.code_table(system, r) for r in releases]) if releases else code_table(None, system, None)
    tab = tab.select(pl.col("release").alias("__rel"), pl.col("key").alias("__key"), "kind", "billable", "title",
                     "ended")
    work = work.join(tab, on=["__rel", "__key"], how="left")
    found = pl.col("kind").is_not_null() & (pl.col("kind") != "modifier" if system == "hcpcs" else pl.lit(True))
    alive = pl.col("ended").is_null() | (pl.col("__day") <= pl.col("ended"))
    return work.with_columns(
        (found & alive).fill_null(False).alias(f"{column}_valid"),
        (found & alive & (pl.col("billable") == 1)).fill_null(False).alias(f"{column}_billable"),
        pl.when(found).then(pl.col("title")).alias(f"{column}_title"),
    ).drop("__day", "__key", "__rel", "kind", "billable", "title", "ended")


def annotate(df: Any, column: str, system: str, date_column: str = "service_date",
             home: str | os.PathLike[str] | None = None, archive: str | None = None) -> Any:
    """``df`` plus validity, billability and title columns for the codes in ``column`` on each row's date."""
    _spark()
    if system not in _SYSTEMS:
        from .errors import MedcodesError

        raise MedcodesError(f"{system!r}: annotate takes one of {', '.join(_SYSTEMS)}")
    from pyspark.sql.types import BooleanType, StringType, StructField, StructType

    schema = StructType(df.schema.fields + [StructField(f"{column}_valid", BooleanType()),
                                            StructField(f"{column}_billable", BooleanType()),
                                            StructField(f"{column}_title", StringType())])
    return df.mapInArrow(_annotate_partition(None if archive else _default_home(home), archive, column, system,
                                             date_column), schema)


# ====================================================================== the CLI's --engine spark
def session(master: str | None = None) -> Any:
    """A Spark session: the one spark-submit made, else a local one (MEDCODES_SPARK_MASTER, default local[2])."""
    _spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (SparkSession.builder.master(master or os.environ.get("MEDCODES_SPARK_MASTER", "local[2]"))
            .appName("medcodes").config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())


def read(spark: Any, path: str | os.PathLike[str]) -> Any:
    p = str(path)
    if p.lower().endswith((".parquet", ".pq")):
        return spark.read.parquet(p)
    return spark.read.option("header", True).csv(p)


def check_file(cb: Any, path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Any:
    """``medcodes check --batch --engine spark``: check a file on Spark, write one findings file; totals."""
    import polars as pl

    from .claims.batch import Totals

    spark = session()
    found = check_lines(read(spark, path), home=cb.store.home)
    tmp = Path(tempfile.mkdtemp(prefix="medcodes-spark-"))
    try:
        as_csv = out is not None and str(out).lower().endswith(".csv")
        writer = found.coalesce(1).write.mode("overwrite")
        (writer.option("header", True).csv(str(tmp / "out")) if as_csv else writer.parquet(str(tmp / "out")))
        part = next(iter(sorted((tmp / "out").glob("part-*"))), None)
        frame = (pl.scan_csv(part, infer_schema=False) if as_csv else pl.scan_parquet(part)) if part else None
        totals = Totals()
        if frame is not None:
            counts = frame.group_by("rule", "severity").len().collect()
            for r, sev, n in counts.iter_rows():
                totals.by_rule[r, sev] = n
            totals.claims_with_errors = frame.filter(pl.col("severity") == "error").select(
                pl.col("claim_id").n_unique()).collect().item()
        lines = read(spark, path)
        totals.lines = lines.filter(lines["line_code"].isNotNull() & (lines["line_code"] != "")).count() \
            if "line_code" in lines.columns else 0
        totals.claims = lines.select("claim_id").distinct().count()
        if out is not None:
            if part is None:
                from .claims.batch import FINDINGS_SCHEMA

                empty = pl.DataFrame(schema=FINDINGS_SCHEMA)
                (empty.write_csv if as_csv else empty.write_parquet)(out)
            else:
                shutil.move(str(part), str(out))
        return totals
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["check_lines", "annotate", "annotate_frame", "ship_store", "session", "check_file", "FINDINGS_DDL"]
