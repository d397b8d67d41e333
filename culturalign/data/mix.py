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


def quotas(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Rows to take from each stratum so that they add up to n (n <= total) and every stratum keeps
    its share: the floor of n * size / total, plus one for the strata with the largest remainders
    (Hamilton's largest-remainder method; ties go to the larger stratum, then the name, so the
    result does not depend on dict order)."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    base = {s: n * size // total for s, size in sizes.items()}
    left = n - sum(base.values())
    by_remainder = sorted(sizes, key=lambda s: (-(n * sizes[s] % total), -sizes[s], s))
    return {s: base[s] + (s in by_remainder[:left]) for s in sizes}


def stratified_sample(rows: pl.DataFrame, n: int, seed: int, strata: pl.Series | None = None) -> pl.Series:
    """Boolean mask over rows: the n rows taken, each stratum (a value of `strata`, null included)
    contributing its `quotas` share, inside a stratum the rows of lowest seeded id rank. Without
    strata: the n rows of lowest rank overall. Deterministic for a seed, independent of row order."""
    labels = (strata if strata is not None else pl.Series([""] * rows.height)).cast(pl.String).fill_null("\x00missing")
    work = pl.DataFrame({"stratum": labels, "rank": id_rank(rows["id"], seed)}).with_row_index("row")
    quota = quotas(dict(work.group_by("stratum").len().iter_rows()), n)
    take = pl.DataFrame({"stratum": list(quota), "quota": list(quota.values())},
                        schema={"stratum": pl.String, "quota": pl.Int64})
    taken = (work.join(take, on="stratum")
             .filter(pl.col("rank").rank("ordinal").over("stratum") <= pl.col("quota"))["row"])
    mask = pl.Series("taken", [False] * rows.height, dtype=pl.Boolean)
    return mask.scatter(taken, True) if len(taken) else mask


def mix(frames: dict[str, pl.DataFrame], caps: dict[str, int | None], seed: int) -> pl.DataFrame:
    """All sources' rows (SCHEMA), at most caps[source] rows of a source (None or absent: all)."""
    parts = []
    for name, rows in frames.items():
        cap = caps.get(name)
        parts.append(rows if cap is None else sample(rows, cap, seed))
    if not parts:
        return io.empty()
    return pl.concat([p.select(list(io.SCHEMA)).cast(io.SCHEMA) for p in parts]).sort("source", "id")
