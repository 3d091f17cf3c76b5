"""Ranked, typo-tolerant search and autocomplete across every installed code system.

``search(codebook, query, ...)`` (see :mod:`medcodes.search.api`) searches
titles, ICD-10-CM inclusion terms, the official ICD-10-CM and ICD-10-PCS
indexes and code prefixes; the compiled index is cached under the store home.
"""

from __future__ import annotations

from .api import DEFAULT_SYSTEMS, Hit, SearchResult, clear_cache, engine_for, prepare, search

__all__ = ["DEFAULT_SYSTEMS", "Hit", "SearchResult", "clear_cache", "engine_for", "prepare", "search"]
