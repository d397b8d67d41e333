"""A source cleaned in bounded memory, in one job or in shards: batches, compact dedup state, accounting.

The rows flow in four steps; one job runs them one after the other (`clean_in_one_job`), a sharded
source runs step 1 and 3 as one Snakemake job per shard (on SLURM each an sbatch job) and step 2 and
4 once (rules/data.smk). Both give the same kept ids and the same stats, because both run the same
code over the same record numbers; only `split` in stats.json says how the source was cut.

1. `clean_shard`: the records [start, stop) of the source are read and cleaned `batch_rows` at a
   time by clean_frame with its per-row filters (decontamination included: it compares a row with
   the evaluation sets, not with other rows). Rejected rows are appended to the shard's rejected.parquet;
   the survivors go to alive.parquet (cleaned and raw messages) and leave compact state behind:
   two 64-bit hashes of their dedup key (exact duplicates), their MinHash signature (the low 32
   bits of each bin, sig32.bin, 512 bytes a row), whether it has n-grams at all (grams.bin) and its
   LSH band keys (bands.bin, 17 x 8 bytes a row at the defaults).
2. `find_duplicates`: over every shard's state in source order, the first occurrence of each key
   hash is kept (exact_duplicate), then near-duplicate candidates are found one LSH band at a time
   and confirmed as they come (only confirmed pairs are kept), and joined into clusters whose first
   row is kept (near_duplicate); then the source's `sample:` is drawn (sampled_out). Memory: the
   32-bit signatures (512 bytes a surviving row) and a few 8-byte numbers a row.
3. `filter_shard`: alive.parquet row group by row group, the kept rows to kept.parquet and the
   duplicates to the rejected rows.
4. `merge_shards`: the shards' kept and rejected rows concatenated (row group by row group) into the
   source's clean.parquet and rejected.parquet, refinement applied when enabled, stats.json checked:
   rows_in == kept + rejected.

A source cleaned with an LLM (clean.english_context.judge) or refined is not batched: the judge's
budget and usage file are per call, so those run over the whole source at once, as before.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from culturalign import io
from culturalign.data import dedup
from culturalign.data.clean import answer_problem, clean_frame, dedup_key, reasons, resolve, sample_rows
from culturalign.data.formats import read_batches
from culturalign.data.readers import count_records, source_files

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000   # rows cleaned at once: bounds the memory of clean_frame (about 1 GB at 50K alpaca rows)
ALIVE_SCHEMA = {**io.SCHEMA, "raw": io.SCHEMA["messages"]}
KEEP, EXACT, NEAR, SAMPLED = 0, 1, 2, 3
DECISIONS = {EXACT: "exact_duplicate", NEAR: "near_duplicate", SAMPLED: "sampled_out"}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)


def size_bytes(size: int | str | None) -> int | None:
    """A shard size: bytes, or "512MB" / "1.5GB" / "64KiB" (powers of 1024)."""
    if size is None or isinstance(size, int):
        return size
    match = _SIZE.match(size)
    if not match:
        raise ValueError(f"shard_size {size!r}: expected a number of bytes or e.g. '512MB', '2GB'")
    return int(float(match[1]) * 1024 ** "_KMGT".index(match[2].upper() or "_"))


def uses_llm(cfg: dict, refine_cfg: dict | None) -> bool:
    cfg = resolve(cfg)
    return bool(cfg["english_context"]["judge"] or cfg["second_opinion"]["judge"] or (refine_cfg or {}).get("enabled"))


def shard_count(path: str, shard_size: int | str | None, *, llm: bool = False) -> int:
    """Shards of a source: its bytes on disk (all files of a directory or glob) over `shard_size`,
    rounded up; 1 without a shard size, with an LLM judge, or while the path does not exist."""
    size = size_bytes(shard_size)
    if not size or llm:
        return 1
    try:
        total = sum(f.stat().st_size for f in source_files(path))
    except io.InputError:
        return 1
    return max(1, math.ceil(total / size))


def shard_ranges(counts: list[int], shards: int) -> list[tuple[int, int]]:
    """[start, stop) record numbers of each shard: the records split as evenly as possible, in order."""
    total = sum(counts)
    return [(total * i // shards, total * (i + 1) // shards) for i in range(shards)]


# ---------------------------------------------------------------- step 1: per-row filters, compact state

def _key_hashes(keys: pl.Series) -> np.ndarray:
    """(n, 2) uint64: two independently seeded hashes of each dedup key (a 128-bit fingerprint)."""
    return np.stack([keys.hash(seed=0).to_numpy(), keys.hash(seed=1).to_numpy()], axis=1)


def _sum_into(total: dict, part: dict) -> dict:
    """Numbers added key by key, nested dicts recursively (per-batch notes and counts)."""
    for key, value in part.items():
        if isinstance(value, dict):
            total[key] = _sum_into(total.get(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value
    return total


class _Writer:
    """Parquet written a batch at a time (one row group each), atomically, in the given schema."""

    def __init__(self, path: Path, schema: dict):
        self.path, self.schema = path, schema
        self.tmp = path.with_name(path.name + ".tmp")
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.select(list(self.schema)).cast(self.schema).to_arrow()
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is None:
            self.write(io.empty(self.schema))
        self.writer.close()
        os.replace(self.tmp, self.path)


def _batches(parquet: Path) -> Iterator[pl.DataFrame]:
    """A parquet file's row groups as polars frames, one at a time."""
    file = pq.ParquetFile(parquet)
    for group in range(file.num_row_groups):
        yield pl.from_arrow(file.read_row_group(group))


def clean_shard(path: str, name: str, fmt: str | None, cfg: dict, workdir: str | os.PathLike, *,
                shard: int = 0, shards: int = 1, columns: dict | None = None, roles: dict | None = None,
                eval_questions: list[str] = (), human_rejected: frozenset[str] | set[str] = frozenset(),
                english_judge: dict | None = None, llm_cache: str | None = None, llm_usage: str | None = None,
                opinion_judge: dict | None = None, opinion_usage: str | None = None, refining: bool = False,
                batch_rows: int = BATCH_ROWS) -> dict:
    """Step 1 for shard `shard` of `shards` (module doc): writes workdir/{alive,rejected}.parquet,
    sig32.bin, grams.bin, bands.bin, hashes.bin and state.json; returns the state."""
    cfg = resolve(cfg)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    # Only a shard needs the record count (a JSON array is parsed twice for it); one job reads to the end.
    counts = count_records(source_files(path, name)) if shards > 1 else None
    start, stop = shard_ranges(counts, shards)[shard] if counts else (0, None)
    llm = bool(cfg["english_context"]["judge"] or cfg["second_opinion"]["judge"])   # one budget: one batch
    row_cfg = {**cfg, "exact_dedup": False, "near_dedup": {**cfg["near_dedup"], "enabled": False}}
    near = cfg["near_dedup"]
    bands, band_rows = dedup.lsh_params(float(near["threshold"]), int(near["num_perm"]))
    alive, rejected = _Writer(work / "alive.parquet", ALIVE_SCHEMA), _Writer(work / "rejected.parquet",
                                                                              io.REJECTED_SCHEMA)
    dropped: dict[str, int] = {}
    reader_dropped: dict[str, int] = {}
    notes: dict = {}
    rows_in = 0
    band_parts = []
    with open(work / "sig32.bin", "wb") as sig_file, open(work / "hashes.bin", "wb") as hash_file, \
            open(work / "grams.bin", "wb") as gram_file, \
            tqdm(total=None if stop is None else stop - start, desc=f"clean {name} shard {shard + 1}/{shards}",
                 unit="rows", file=sys.stderr, mininterval=5) as bar:
        for rows, reader_rejected in read_batches(path, name, fmt, columns=columns, roles=roles,
                                                  batch_rows=sys.maxsize if llm else batch_rows,
                                                  start=start, stop=stop, counts=counts):
            rows_in += rows.height + reader_rejected.height
            rejected.write(reader_rejected)
            _sum_into(reader_dropped, dict(reader_rejected["drop_reason"].value_counts().iter_rows()))
            kept, filtered, batch_dropped, batch_notes = clean_frame(
                rows, row_cfg, eval_questions=eval_questions, human_rejected=human_rejected,
                english_judge=english_judge, llm_cache=llm_cache, llm_usage=llm_usage, refining=refining,
                opinion_judge=opinion_judge, opinion_usage=opinion_usage)
            rejected.write(filtered)
            _sum_into(dropped, batch_dropped)
            _sum_into(notes, batch_notes)
            raw = rows.select("id", pl.col("messages").alias("raw"))
            alive.write(kept.join(raw, on="id", how="left", maintain_order="left"))
            keys = kept.select(dedup_key(pl.col("messages"))).to_series()
            _key_hashes(keys).tofile(hash_file)
            sig = dedup.signatures(keys.to_list(), ngram=near["ngram"], num_perm=near["num_perm"], seed=near["seed"])
            sig.astype(np.uint32).tofile(sig_file)   # the low 32 bits of each bin: see _State.signatures
            dedup.has_signature(sig).tofile(gram_file)
            band_parts.append(work / f"bands.{len(band_parts)}.bin")
            dedup.band_keys(sig, bands, band_rows, near["seed"]).tofile(band_parts[-1])
            bar.update(rows.height + reader_rejected.height)
    alive.close()
    rejected.close()
    _join_bands(work, band_parts, bands)
    state = {"shard": shard, "shards": shards, "start": start, "stop": start + rows_in if stop is None else stop,
             "rows_in": rows_in, "alive": alive.rows,
             "rejected": rejected.rows, "dropped": dropped, "reader_dropped": reader_dropped, "notes": notes,
             "bands": bands, "num_perm": int(near["num_perm"])}
    io.write_json(state, work / "state.json")
    log.info("%s shard %d/%d: records [%d, %d): %d rows in, %d past the per-row filters", name, shard + 1, shards,
             start, state["stop"], rows_in, alive.rows)
    return state


def _join_bands(work: Path, parts: list[Path], bands: int) -> None:
    """The batches' (bands, n_batch) key blocks rewritten band-major into bands.bin, (bands, n_shard):
    step 2 reads one band of a shard as one contiguous run."""
    sizes = [p.stat().st_size // (8 * bands) for p in parts]
    with open(work / "bands.bin", "wb") as out:
        for band in range(bands):
            for part, n in zip(parts, sizes):
                np.fromfile(part, dtype=np.uint64, count=n, offset=band * n * 8).tofile(out)
    for part in parts:
        part.unlink()


# ---------------------------------------------------------------- step 2: global duplicates and sample

class _State:
    """The compact state of all shards of a source, in source order (module doc, step 2)."""

    def __init__(self, workdirs: list[Path]):
        self.dirs = workdirs
        self.states = [json.loads((d / "state.json").read_text(encoding="utf-8")) for d in workdirs]
        self.sizes = np.array([s["alive"] for s in self.states], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.n = int(self.offsets[-1])
        self.num_perm = self.states[0]["num_perm"] if self.states else 0

    def hashes(self) -> np.ndarray:
        return np.concatenate([np.fromfile(d / "hashes.bin", dtype=np.uint64).reshape(-1, 2) for d in self.dirs]) \
            if self.n else np.empty((0, 2), np.uint64)

    def band(self, band: int) -> np.ndarray:
        return np.concatenate([np.fromfile(d / "bands.bin", dtype=np.uint64, count=int(n), offset=band * int(n) * 8)
                               for d, n in zip(self.dirs, self.sizes)])

    def has_signature(self) -> np.ndarray:
        """Which texts have n-grams at all (the others are left to exact dedup)."""
        return np.concatenate([np.fromfile(d / "grams.bin", dtype=bool) for d in self.dirs])

    def signatures(self) -> np.ndarray:
        """Every signature, 32 bits a bin: two bins whose 64-bit values differ have equal low 32 bits
        with probability 2^-32, so the share of equal bins (the confirmation) is the same as on the full
        values for all practical purposes, at half the memory, and gathered from memory, not from disk."""
        sig = np.empty((self.n, self.num_perm), dtype=np.uint32)   # filled in place: no second copy
        for d, start, end in zip(self.dirs, self.offsets[:-1], self.offsets[1:]):
            with open(d / "sig32.bin", "rb") as handle:
                if handle.readinto(memoryview(sig[start:end]).cast("B")) != (end - start) * self.num_perm * 4:
                    raise RuntimeError(f"{d}: sig32.bin is shorter than its state.json says (a stale shard?)")
        return sig


def find_duplicates(workdirs: list[str | os.PathLike], cfg: dict, sample: dict | None = None,
                    source: str = "?") -> tuple[list[np.ndarray], dict]:
    """Step 2 (module doc): per shard, a decision per alive row (KEEP, EXACT, NEAR, SAMPLED), and the
    sample note (or {})."""
    cfg = resolve(cfg)
    state = _State([Path(d) for d in workdirs])
    decision = np.zeros(state.n, dtype=np.int8)
    if cfg["exact_dedup"] and state.n:
        hashes = state.hashes()
        first = pl.DataFrame({"a": hashes[:, 0], "b": hashes[:, 1]}).select(
            pl.struct("a", "b").is_first_distinct()).to_series().to_numpy()
        decision[~first] = EXACT
        del hashes
    near = cfg["near_dedup"]
    if near["enabled"] and state.n > 1:
        usable = (decision == KEEP) & state.has_signature()
        bands, _ = dedup.lsh_params(float(near["threshold"]), int(near["num_perm"]))
        sig = state.signatures()
        pairs = dedup.unique_pairs((dedup.confirmed(sig.__getitem__, batch, near["threshold"])
                                    for batch in dedup.candidate_batches(state.band, bands, usable)), state.n)
        del sig
        roots = dedup.cluster_roots(state.n, pairs)
        decision[(roots != np.arange(state.n)) & (decision == KEEP)] = NEAR
        log.info("%s: %d near-duplicate pairs confirmed", source, len(pairs))
    note: dict = {}
    if sample:
        survivors = decision == KEEP
        kept = pl.concat([pl.read_parquet(d / "alive.parquet", columns=["id", "meta"]) for d in state.dirs]) \
            if state.n else pl.DataFrame(schema={"id": pl.String, "meta": pl.String})
        taken, note = sample_rows(kept.filter(pl.Series(survivors)), sample, source)
        index = np.flatnonzero(survivors)
        decision[index[~taken.to_numpy()]] = SAMPLED
    return [decision[state.offsets[i]:state.offsets[i + 1]] for i in range(len(state.dirs))], note


# ---------------------------------------------------------------- step 3: the per-shard filter

def filter_shard(workdir: str | os.PathLike, decision: np.ndarray) -> None:
    """Step 3: alive.parquet split by the decisions into kept.parquet and duplicates.parquet."""
    work = Path(workdir)
    kept, dropped = _Writer(work / "kept.parquet", io.SCHEMA), _Writer(work / "duplicates.parquet",
                                                                       io.REJECTED_SCHEMA)
    offset = 0
    for rows in _batches(work / "alive.parquet"):
        codes = pl.Series("code", decision[offset:offset + rows.height])
        offset += rows.height
        rows = rows.with_columns(codes)
        kept.write(rows.filter(pl.col("code") == KEEP))
        out = rows.filter(pl.col("code") != KEEP)
        dropped.write(out.select("id", "source", pl.col("raw").alias("messages"), "meta",
                                 pl.col("code").replace_strict(DECISIONS, return_dtype=pl.String)
                                 .alias("drop_reason")))
    if offset != len(decision):
        raise RuntimeError(f"{work}: {offset} alive rows but {len(decision)} decisions (a stale shard?)")
    kept.close()
    dropped.close()


def save_decisions(decisions: list[np.ndarray], note: dict, out: str | os.PathLike) -> None:
    """The decisions of step 2 as one .npz (arrays shard0, shard1, ...) plus the sample note."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, note=np.array(json.dumps(note)), **{f"shard{i}": d for i, d in enumerate(decisions)})
    os.replace(tmp, out)


def load_decision(path: str | os.PathLike, shard: int) -> np.ndarray:
    with np.load(path) as data:
        return data[f"shard{shard}"]


def load_note(path: str | os.PathLike) -> dict:
    with np.load(path) as data:
        return json.loads(str(data["note"]))


# ---------------------------------------------------------------- step 4: merge and account

def _copy(parts: list[Path], writer: _Writer) -> None:
    for part in parts:
        for rows in _batches(part):
            writer.write(rows)


def merge_shards(workdirs: list[str | os.PathLike], name: str, cfg: dict, out_clean: str, out_rejected: str, *,
                 sample_note: dict | None = None, sample: bool = False, decontaminated: bool = True,
                 refine: tuple | None = None, split: dict | None = None) -> dict:
    """Step 4 (module doc): clean.parquet, rejected.parquet and the stats of the source.
    `refine`: (refine_cfg, judge, cache, usage_path, benign, clean cfg) when refinement is on (whole source at once)."""
    dirs = [Path(d) for d in workdirs]
    states = [json.loads((d / "state.json").read_text(encoding="utf-8")) for d in dirs]
    kept_w, rejected_w = _Writer(Path(out_clean), io.SCHEMA), _Writer(Path(out_rejected), io.REJECTED_SCHEMA)
    dropped = {reason: 0 for reason in reasons(cfg, decontaminate=decontaminated) + (["sampled_out"] if sample else [])}
    reader: dict[str, int] = {}
    notes: dict = {}
    for state in states:
        _sum_into(dropped, state["dropped"])
        _sum_into(reader, state["reader_dropped"])
        _sum_into(notes, state["notes"])
    for d in dirs:
        duplicates = pl.read_parquet(d / "duplicates.parquet", columns=["drop_reason"])["drop_reason"]
        _sum_into(dropped, dict(duplicates.value_counts().iter_rows()))
    refined = 0
    if refine:
        refined, extra = _refine(dirs, kept_w, refine)
        rejected_w.write(extra)
        _sum_into(dropped, dict(extra["drop_reason"].value_counts().iter_rows()))
    else:
        _copy([d / "kept.parquet" for d in dirs], kept_w)
    _copy([p for d in dirs for p in (d / "rejected.parquet", d / "duplicates.parquet")], rejected_w)
    kept_w.close()
    rejected_w.close()
    if sample_note:
        notes["sample"] = sample_note
    rows_in = sum(s["rows_in"] for s in states)
    by_count = sorted(reader.items(), key=lambda kv: (-kv[1], kv[0]))
    merged = {**dict(by_count), **{r: n + reader.get(r, 0) for r, n in dropped.items()}}
    stats = {"source": name, "rows_in": rows_in, "rows_kept": kept_w.rows, "rows_rejected": rejected_w.rows,
             "dropped": merged, "refined": refined, **notes, "split": split or {}}
    if not rows_in == kept_w.rows + rejected_w.rows == kept_w.rows + sum(merged.values()):
        raise RuntimeError(f"source '{name}': rows do not add up: {stats} (a filter lost or double-counted rows)")
    return stats


def _refine(dirs: list[Path], kept_w: _Writer, refine: tuple) -> tuple[int, pl.DataFrame]:
    """Refinement over the whole source's kept rows at once (one LLM budget and usage file), then the answer
    problems it did not repair (translated code, the answer checks clean_frame left to it) dropped after all,
    each with its reason."""
    from culturalign.data import refine as refining   # the LLM client stack, only when refinement is on
    refine_cfg, judge, cache, usage, benign, cfg = refine
    kept = pl.concat([pl.read_parquet(d / "kept.parquet") for d in dirs])
    kept, refine_stats = refining.refine_frame(kept, refine_cfg, judge, cache, usage, benign=benign, clean_cfg=cfg)
    still = kept.select(answer_problem(pl.col("messages"), cfg).alias("drop_reason")).to_series()
    extra = kept.filter(still.is_not_null()).with_columns(drop_reason=still.drop_nulls()).select(
        list(io.REJECTED_SCHEMA)).cast(io.REJECTED_SCHEMA)
    kept = kept.filter(still.is_null())
    kept_w.write(kept)
    return refine_stats["refined"], extra


# ---------------------------------------------------------------- all four in one job

def clean_in_one_job(path: str, name: str, fmt: str | None, cfg: dict, out_clean: str, out_rejected: str, *,
                     sample: dict | None = None, refine: tuple | None = None, batch_rows: int = BATCH_ROWS,
                     **shard_kwargs) -> dict:
    """Steps 1-4 for a source as one shard, in a scratch directory beside the outputs (removed after)."""
    parent = Path(out_clean).parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".shards-", dir=parent) as scratch:
        work = Path(scratch) / "0"
        clean_shard(path, name, fmt, cfg, work, batch_rows=batch_rows, **shard_kwargs)
        decisions, note = find_duplicates([work], cfg, sample, name)
        filter_shard(work, decisions[0])
        return merge_shards([work], name, cfg, out_clean, out_rejected, sample_note=note, sample=bool(sample),
                            decontaminated=bool(shard_kwargs.get("eval_questions")), refine=refine,
                            split={"shards": 1, "batch_rows": batch_rows, "records": [state_records(work)]})


def state_records(work: Path) -> list[int]:
    state = json.loads((work / "state.json").read_text(encoding="utf-8"))
    return [state["start"], state["stop"]]

