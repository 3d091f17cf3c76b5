"""Which official releases exist, where their files come from, and pulling them into the store.

``pull_from_dir`` is the offline path (``medcodes pull --from DIR``): scan the
folder (zips included), let each system module say which releases the files
make, build every release that is new or changed, and install them all in
one transaction, so a bad file leaves the store exactly as it was.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable

from . import sources as _sources
from .errors import DataError
from .store import Store, write_release
from .systems import Plan, all_modules


@dataclass
class PullReport:
    installed: list[tuple[str, str, dict[str, int]]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    #: releases whose build failed, with the one-line reason; the others were installed
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    ignored: int = 0
    #: temporary files a killed pull had left in the store, removed by this one
    cleaned: int = 0


def plans_in(found: list[_sources.Source], systems: set[str] | None = None) -> list[Plan]:
    plans: list[Plan] = []
    for mod in all_modules():
        if systems and mod.SYSTEM not in systems:
            continue
        plans.extend(mod.plan(found))
    return plans


def pull_from_dir(
    store: Store,
    root: str | os.PathLike[str],
    systems: set[str] | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    jobs: int | None = None,
) -> PullReport:
    """Install every release the official files under ``root`` make.

    Builds run in ``jobs`` worker processes (default: one per core), each writing its
    release file under a temporary name; the files that built are moved into place
    together at the end. A release whose files cannot be read is skipped (listed in
    ``report.skipped`` with the reason) and the previous copy of it, if any, stays.
    """
    report = PullReport()
    # the temporary files of a pull that was killed (its process is gone) are removed first
    report.cleaned = len(store.clean_stale())
    found = _sources.scan(root)
    plans = plans_in(found, systems)
    used = {s for p in plans for s in p.sources}
    report.ignored = sum(1 for s in found if s not in used)
    if not plans:
        raise DataError(f"{root}: no official release files found")
    todo: list[Plan] = []
    for plan in plans:
        refs = [s.ref().as_dict() for s in plan.sources]
        if not force and store.is_current(plan.system, plan.release, refs):
            report.unchanged.append((plan.system, plan.release))
        else:
            todo.append(plan)
    # biggest first, so the slowest builds start early
    todo.sort(key=lambda p: -sum(s.ref().size for s in p.sources))
    with store.transaction() as txn:
        targets = [txn.reserve(p.system, p.release) for p in todo]
        for plan in todo:
            if progress:
                progress(f"building {plan.system} {plan.release} from "
                         + ", ".join(s.display for s in plan.sources))
        results = _build_all(todo, targets, jobs)
        for plan, target, result in zip(todo, targets, results):
            if isinstance(result, str):
                txn.discard(target)
                report.skipped.append((plan.system, plan.release, result))
            else:
                report.installed.append(result)
    report.installed.sort()
    return report


_PLANS: list[tuple[Plan, Path]] = []  # handed to forked workers


Built = tuple[str, str, dict[str, int]]


def _build_one(i: int) -> Built | str:
    """The release's (system, release, counts), or the one-line reason it could not be built."""
    plan, target = _PLANS[i]
    try:
        build = plan.build()
        write_release(target, build)
    except DataError as exc:
        return str(exc)
    return build.system, build.release, dict(build.counts)


def _build_all(todo: list[Plan], targets: list[Path], jobs: int | None) -> list[Built | str]:
    global _PLANS
    _PLANS = list(zip(todo, targets))
    try:
        jobs = min(jobs or os.cpu_count() or 1, len(todo))
        if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return [_build_one(i) for i in range(len(todo))]
        ctx = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_die_with_parent,
                                   initargs=(os.getpid(),))
        try:
            futures = [pool.submit(_build_one, i) for i in range(len(todo))]
            results = [f.result() for f in futures]
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM) or a worker died: stop the builds now rather than
            # wait for them (the transaction then removes their temporary files)
            workers = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.join(5)
            raise
        pool.shutdown(wait=True)
        return results
    finally:
        _PLANS = []


def _die_with_parent(parent: int) -> None:
    """In each build worker: exit as soon as the pull that started it is gone.

    A pull killed with SIGKILL cannot stop its workers; without this they would build
    on, for minutes, with nobody to collect their work. Linux delivers SIGKILL to the
    worker when its parent dies (PR_SET_PDEATHSIG); elsewhere, and as a backstop, a
    thread checks once a second that the parent is still there.
    """
    import signal
    import threading
    import time

    # the pull stops its workers itself (terminate, i.e. SIGTERM): no handler inherited from it,
    # and no Ctrl-C traceback from each worker (the terminal sends SIGINT to the whole group)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="medcodes-parent-watch", daemon=True).start()
