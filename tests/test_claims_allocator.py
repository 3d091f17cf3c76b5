"""The allocator setting of batch runs (medcodes/allocator.py): it must reach Polars' jemalloc, which reads
``_RJEM_MALLOC_CONF`` once, when Polars is imported -- so it is checked in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys

from medcodes.allocator import BATCH_CONF

SNIPPET = ("import os, sys\n{before}\nfrom medcodes.allocator import for_batch\nok = for_batch()\nimport polars\n"
           "print(ok, os.environ.get('_RJEM_MALLOC_CONF'))\n")


def _run(before: str = "", env: dict[str, str] | None = None) -> str:
    e = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", SNIPPET.format(before=before)], env=e, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_set_before_polars_is_imported_and_appended_to_polars_own_settings() -> None:
    ok, conf = _run().split(" ", 1)
    # Polars puts its own settings first; jemalloc takes the last value of an option
    assert ok == "True" and conf.endswith("," + BATCH_CONF) and "dirty_decay_ms:500" in conf


def test_too_late_once_polars_is_imported_and_a_users_setting_is_kept() -> None:
    ok, conf = _run(before="import polars").split(" ", 1)
    assert ok == "False" and not conf.endswith(BATCH_CONF)
    ok, conf = _run(env={"_RJEM_MALLOC_CONF": "narenas:2"}).split(" ", 1)
    assert ok == "False" and conf.endswith("narenas:2") and BATCH_CONF not in conf
