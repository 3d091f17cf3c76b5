"""crosswalk: placeholder until its parser lands (see systems/__init__.py for the interface)."""

from __future__ import annotations

SYSTEM = "crosswalk"


def plan(sources):  # noqa: D103
    return []


def readings(key):  # noqa: D103
    return []


def structure(code, db):  # noqa: D103
    return {}


def enrich(record, row, db):  # noqa: D103
    return None
