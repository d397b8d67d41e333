"""The training mix of one stage: every source's cleaned rows, optionally capped per source.

Caps and samples are deterministic: a row's rank is a seeded hash of its id (sha1, stable across
machines, Python and polars versions), so a rerun, or a rerun after other rows were added, keeps the
same rows as far as it can. The mix is sorted by (source, id) so its bytes do not depend on the order
in which sources were listed or finished.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import polars as pl

from culturalign import io


def id_rank(ids: Iterable[str], seed: int) -> pl.Series:
    """A seeded pseudo-random 64-bit rank per id, the same on every machine and version."""
    return pl.Series("rank", [int.from_bytes(hashlib.sha1(f"{seed}\x00{i}".encode()).digest()[:8], "big")
                              for i in ids], dtype=pl.UInt64)


def sample(rows: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """The n rows of lowest seeded id rank (all rows when there are fewer), in rank order."""
    return rows.with_columns(id_rank(rows["id"], seed)).sort("rank").head(n).drop("rank")


def mix(frames: dict[str, pl.DataFrame], caps: dict[str, int | None], seed: int) -> pl.DataFrame:
    """All sources' rows (SCHEMA), at most caps[source] rows of a source (None or absent: all)."""
    parts = []
    for name, rows in frames.items():
        cap = caps.get(name)
        parts.append(rows if cap is None else sample(rows, cap, seed))
    if not parts:
        return io.empty()
    return pl.concat([p.select(list(io.SCHEMA)).cast(io.SCHEMA) for p in parts]).sort("source", "id")
