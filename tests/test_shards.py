"""A source cleaned in shards (culturalign/data/shards.py) against the same source in one job: same kept
ids, same rejected rows and reasons, same stats; duplicates found across shard boundaries; the rule
graph with a tiny shard size (one job per shard, one global duplicate step)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from culturalign import io
from culturalign.data import shards


def records(n: int = 300) -> list[dict]:
    """n alpaca rows, unrelated to each other, with hand-planted duplicates across shard boundaries
    (three shards of 100): 250 copies 0 exactly, 201 is 1 with its full stop swapped for an exclamation
    mark (the same dedup key: exact), 150 is 2 with two characters inserted (near), 120 is English-context."""
    rng = random.Random(0)
    text = lambda k: "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(k))   # noqa: E731
    rows = [{"instruction": f"请解释：{text(12)}？", "input": "", "output": f"{text(40)}。"} for i in range(n)]
    rows[250] = dict(rows[0])
    rows[201] = {**rows[1], "output": rows[1]["output"][:-1] + "！"}
    rows[150] = {**rows[2], "output": rows[2]["output"][:5] + "也都" + rows[2]["output"][5:]}
    rows[120] = {"instruction": "请找出与 cat 押韵的英语单词。", "input": "", "output": "hat, bat, rat 都与 cat 押韵。"}
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def sharded(path: str, name: str, cfg: dict, out: Path, n: int, sample: dict | None = None) -> dict:
    """The four steps as the rules run them, each shard on its own."""
    dirs = [out / "shards" / str(i) for i in range(n)]
    for i, d in enumerate(dirs):
        shards.clean_shard(path, name, None, cfg, d, shard=i, shards=n, batch_rows=40)
    decisions, note = shards.find_duplicates(dirs, cfg, sample, name)
    for d, decision in zip(dirs, decisions):
        shards.filter_shard(d, decision)
    return shards.merge_shards(dirs, name, cfg, str(out / "clean.parquet"), str(out / "rejected.parquet"),
                               sample_note=note, sample=bool(sample), decontaminated=False,
                               split={"shards": n})


def one_job(path: str, name: str, cfg: dict, out: Path, sample: dict | None = None) -> dict:
    return shards.clean_in_one_job(path, name, None, cfg, str(out / "clean.parquet"), str(out / "rejected.parquet"),
                                   sample=sample, batch_rows=1000)


def without_split(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "split"}


@pytest.mark.parametrize("sample", [None, {"n": 150, "seed": 3}])
def test_sharded_equals_one_job(tmp_path, sample):
    path = str(write_jsonl(tmp_path / "src.jsonl", records()))
    whole = one_job(path, "src", {}, tmp_path / "one", sample)
    parts = sharded(path, "src", {}, tmp_path / "three", 3, sample)
    assert without_split(parts) == without_split(whole)
    assert parts["split"] == {"shards": 3} and whole["split"]["records"] == [[0, 300]]
    one_kept = pl.read_parquet(tmp_path / "one" / "clean.parquet")
    three_kept = pl.read_parquet(tmp_path / "three" / "clean.parquet")
    assert one_kept.equals(three_kept)   # the same rows, in the same (source) order
    one_rej = pl.read_parquet(tmp_path / "one" / "rejected.parquet").sort("id")
    assert one_rej.equals(pl.read_parquet(tmp_path / "three" / "rejected.parquet").sort("id"))
    reason = dict(one_rej.select("id", "drop_reason").iter_rows())
    ids = [io.row_id("src", i) for i in range(300)]
    assert [reason.get(ids[i]) for i in (250, 201, 150, 120)] == [
        "exact_duplicate", "exact_duplicate", "near_duplicate", "english_context"]
    if sample is None:
        assert whole["dropped"] == {"human_rejected": 0, "empty_turn": 0, "mojibake": 0, "too_short_prompt": 0,
                                    "too_long_prompt": 0, "too_short_answer": 0, "too_long_answer": 0,
                                    "missing_content": 0, "english_context": 1, "translated_code": 0,
                                    "low_cjk_share": 0, "answer_language": 0, "answer_length": 0,
                                    "answer_count": 0, "degenerate": 0, "truncated": 0,
                                    "exact_duplicate": 2, "near_duplicate": 1}
        assert (whole["rows_in"], whole["rows_kept"]) == (300, 296)
        assert [reason.get(ids[i]) for i in (0, 1, 2)] == [None, None, None]   # the first of each kept
    else:
        assert whole["rows_kept"] == 150 and whole["dropped"]["sampled_out"] == 146
        assert whole["sample"]["n"] == 150


def test_shard_ranges_cover_every_record():
    assert shards.shard_ranges([120, 0, 181], 3) == [(0, 100), (100, 200), (200, 301)]
    assert shards.shard_ranges([5], 1) == [(0, 5)]


def test_shard_count_from_bytes(tmp_path):
    path = write_jsonl(tmp_path / "src.jsonl", records())
    size = path.stat().st_size
    assert shards.shard_count(str(path), None) == 1
    assert shards.shard_count(str(path), size) == 1
    assert shards.shard_count(str(path), size // 3 + 1) == 3
    assert shards.shard_count(str(path), f"{size / 1024 / 2:.3f}KB") == 3   # ceil(2.0x): a size string
    assert shards.shard_count(str(path), 10, llm=True) == 1
    assert shards.size_bytes("2GB") == 2 * 1024 ** 3 and shards.size_bytes("64KiB") == 65536


SHARDED = """\
data:
  knowledge:
    - {name: whole, path: demo/data/knowledge_alpaca.json}
    - {name: cut, path: demo/data/knowledge_alpaca.json, clean: {shard_size: 30KB, batch_rows: 50}}
  safety:
    - {name: demo_safety, path: demo/data/safety_prompts.json, format: safety_prompts}
"""


def by_index(frame: pl.DataFrame, name: str, n: int) -> pl.DataFrame:
    """A source's rows keyed by their record number instead of their id (ids hash the source name)."""
    index = {io.row_id(name, i): i for i in range(n)}
    return frame.with_columns(pl.col("id").replace_strict(index, return_dtype=pl.Int64).alias("index"),
                              pl.lit("-").alias("source")).drop("id")


def test_workflow_runs_shards_as_jobs(repo_root, tmp_path):
    """79 KB with shard_size 30KB: three clean_shard and filter_shard jobs, one source_duplicates; the
    result equals the same file cleaned in one job."""
    from workflow_run import copy_workflow, planned, snakemake
    work = copy_workflow(repo_root, tmp_path)
    (work / "sharded.yaml").write_text(SHARDED)
    targets = ["results/data/knowledge/whole/stats.json", "results/data/knowledge/cut/stats.json"]
    args = [*targets, "--configfile", "config.yaml", "sharded.yaml"]
    assert planned(work, *args) == {"clean_source": 2, "clean_shard": 3, "source_duplicates": 1, "filter_shard": 3}
    snakemake(work, *args)
    whole, cut = (json.loads((work / t).read_text()) for t in targets)
    assert cut["split"]["shards"] == 3 and cut["split"]["shard_size"] == "30KB"
    assert [b - a for a, b in cut["split"]["records"]] == [126, 126, 127] and whole["rows_in"] == 379
    assert {k: v for k, v in cut.items() if k not in ("split", "source")} == \
        {k: v for k, v in whole.items() if k not in ("split", "source")}
    n = whole["rows_in"]
    for part in ("clean", "rejected"):
        one = by_index(pl.read_parquet(work / f"results/data/knowledge/whole/{part}.parquet"), "whole", n)
        three = by_index(pl.read_parquet(work / f"results/data/knowledge/cut/{part}.parquet"), "cut", n)
        assert one.sort("index").equals(three.sort("index")), part
    assert not list(work.glob("results/data/knowledge/cut/shards/*/*.parquet"))   # temporary, removed
