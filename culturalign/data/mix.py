"""The training mix of one stage: every source's cleaned rows, optionally capped per source.

Caps and samples are deterministic: a row's rank is a seeded hash of its id (sha1, stable across
machines, Python and polars versions), so a rerun, or a rerun after other rows were added, keeps the
same rows as far as it can. The mix is sorted by (source, id) so its bytes do not depend on the order
in which sources were listed or finished.

`mix_files` writes the same mix from the cleaned parquet files in bounded memory: per source, the rows
(capped) are spread over buckets by the leading hex digits of their id (ids are hashes, so the
buckets are even and each holds about `batch_rows` rows), then each bucket is sorted and appended, in
bucket order, which is id order.
"""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

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


def mix_files(paths: dict[str, str | os.PathLike], caps: dict[str, int | None], seed: int, out: str | os.PathLike,
              batch_rows: int = 200_000) -> dict[str, int]:
    """`mix` over the sources' clean.parquet files ({source: path}), written to `out` without holding
    more than about `batch_rows` rows at once (module doc). Returns the rows taken per source."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    arrow_schema = io.empty().to_arrow().schema
    taken = {}
    with pq.ParquetWriter(tmp, arrow_schema) as writer, \
            tempfile.TemporaryDirectory(prefix=".mix-", dir=out.parent) as scratch:
        for name in sorted(paths):
            ids = pl.read_parquet(paths[name], columns=["id"])
            cap = caps.get(name)
            keep = None if cap is None or cap >= ids.height else sample(ids, cap, seed)["id"]
            rows = ids.height if keep is None else keep.len()
            taken[name] = rows
            buckets = max(1, math.ceil(rows / batch_rows))
            bucket = (pl.col("id").str.slice(0, 6).str.to_integer(base=16) * buckets // 16**6).alias("_bucket")
            parts = [Path(scratch) / f"{name}.{b}.parquet" for b in range(buckets)]
            part_writers = [pq.ParquetWriter(p, arrow_schema) for p in parts]
            source = pq.ParquetFile(paths[name])
            for group in range(source.num_row_groups):
                rows_of = pl.from_arrow(source.read_row_group(group)).select(list(io.SCHEMA)).cast(io.SCHEMA)
                if keep is not None:
                    rows_of = rows_of.filter(pl.col("id").is_in(keep.implode()))
                for b, part in rows_of.with_columns(bucket).partition_by("_bucket", as_dict=True).items():
                    part_writers[b[0]].write_table(part.drop("_bucket").to_arrow())
            for w in part_writers:
                w.close()
            for part in parts:
                writer.write_table(pl.read_parquet(part).sort("id").to_arrow())
                part.unlink()
    os.replace(tmp, out)
    return taken
