"""Shared fixtures: the real official files in ../shared/data, pulled once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDCODES_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA}: the official files are needed (set MEDCODES_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def home(tmp_path_factory, shared_data) -> Path:
    """A MEDCODES_HOME with everything in ../shared/data pulled into it.

    MEDCODES_TEST_HOME reuses a store you already pulled (faster local runs); the pull
    is then a no-op unless the files changed.
    """
    from medcodes.releases import pull_from_dir
    from medcodes.store import Store

    reuse = os.environ.get("MEDCODES_TEST_HOME")
    h = Path(reuse) if reuse else tmp_path_factory.mktemp("medcodes-home")
    pull_from_dir(Store(h), shared_data)
    # the claim facts `medcodes pull` precompiled into the user's store (CI pulls once before the tests) are
    # keyed by the releases' sha256s: the same files here, so they are reused rather than compiled again
    user_facts = Path(os.environ.get("MEDCODES_HOME", "/nonexistent")) / "facts"
    if not reuse and user_facts.is_dir():
        shutil.copytree(user_facts, h / "facts", dirs_exist_ok=True)
    return h


@pytest.fixture(scope="session")
def cb(home):
    from medcodes import Codebook

    book = Codebook.open(home=home)
    yield book
    book.close()


@pytest.fixture(scope="session")
def book(cb):
    """The same Codebook under the name the claims tests use."""
    return cb
