"""Chunks of whole claims (medcodes.claims.batch.whole_claims): whatever the sizes of the frames a reader gives
(Parquet row groups, CSV batches), every chunk holds whole claims, at most ``chunk_rows`` rows unless one claim
alone is longer, and the chunks put together are the file. SYNTHETIC claim ids."""

from __future__ import annotations

import random

import polars as pl
import pytest

from medcodes.claims.batch import whole_claims


@pytest.mark.parametrize("sizes", [[3], [7], [20], [1000], [1, 2, 60]])
def test_chunks_are_whole_claims_of_at_most_chunk_rows(sizes: list[int]) -> None:
    rnd = random.Random(len(sizes) * 100 + sizes[0])
    ids: list[str] = []
    for i in range(300):    # claims of 1-5 lines, three of 50 (longer than a chunk): first, middle, last
        ids += [f"SYN-{i}"] * (50 if i in (0, 100, 299) else rnd.randint(1, 5))
    table = pl.DataFrame({"claim_id": ids, "n": range(len(ids))})
    frames, at = [], 0
    while at < table.height:
        k = rnd.choice(sizes)
        frames.append(table.slice(at, k))
        at += k
    got = list(whole_claims(frames, 7))
    assert pl.concat([g for g, _ in got]).equals(table)
    seen: set[str] = set()
    for chunk, row0 in got:
        assert chunk["n"][0] == row0
        names = set(chunk["claim_id"].to_list())
        assert not names & seen           # no claim in two chunks
        seen |= names
        assert chunk.height <= 7 or len(names) == 1
    assert max(g.height for g, _ in got) == 50 and sum(g.height <= 7 for g, _ in got) == len(got) - 3
