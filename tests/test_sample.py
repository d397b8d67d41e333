"""Per-source sampling after cleaning (`data[*].sample`): largest-remainder strata, seeded, accounted."""
from __future__ import annotations

import json
import logging

import polars as pl
import pytest

from culturalign import io
from culturalign.data.clean import clean_frame
from culturalign.data.mix import quotas

OFF = {"html_entities": False, "mojibake": False, "length": {"enabled": False}, "cjk": {"enabled": False},
       "english_context": {"enabled": False}, "translated_code": False, "near_dedup": {"enabled": False},
       "decontaminate": {"enabled": False}}


def rows(sizes: dict[str, int], source: str = "sp") -> pl.DataFrame:
    records, i = [], 0
    for scenario, size in sizes.items():
        for _ in range(size):
            records.append({"id": io.row_id(source, i), "source": source, "meta": json.dumps({"scenario": scenario}),
                            "messages": [{"role": "user", "content": f"问题{i}"}, {"role": "assistant", "content": f"回答{i}"}]})
            i += 1
    return io.frame(records)


def scenarios(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.select(pl.col("meta").str.json_path_match("$.scenario")).to_series().value_counts().iter_rows())


def test_quotas_largest_remainder():
    assert quotas({"A": 50, "B": 30, "C": 20}, 10) == {"A": 5, "B": 3, "C": 2}
    assert quotas({"A": 50, "B": 30, "C": 20}, 7) == {"A": 4, "B": 2, "C": 1}  # 3.5, 2.1, 1.4: A has the largest remainder
    assert quotas({"A": 1, "B": 1, "C": 1}, 2) == {"A": 1, "B": 1, "C": 0}     # equal remainders: by name
    assert quotas({"A": 5, "B": 2}, 9) == {"A": 5, "B": 2}


def test_stratified_sample_keeps_shares_and_accounts_every_row():
    frame = rows({"A": 50, "B": 30, "C": 20})
    kept, rejected, dropped, notes = clean_frame(frame, OFF, sample={"n": 7, "stratify_by": "scenario", "seed": 3})
    assert scenarios(kept) == {"A": 4, "B": 2, "C": 1}
    assert dropped["sampled_out"] == 93 == rejected.filter(pl.col("drop_reason") == "sampled_out").height
    assert kept.height + rejected.height == frame.height
    assert notes["sample"]["strata"] == {"A": {"rows": 50, "taken": 4}, "B": {"rows": 30, "taken": 2},
                                         "C": {"rows": 20, "taken": 1}}
    assert kept["id"].to_list() == [i for i in frame["id"] if i in set(kept["id"])]  # input order kept


def test_sample_is_deterministic_per_seed_and_independent_of_row_order():
    frame = rows({"A": 50, "B": 30, "C": 20})
    spec = {"n": 10, "stratify_by": "scenario", "seed": 0}
    first = set(clean_frame(frame, OFF, sample=spec).kept["id"])
    assert first == set(clean_frame(frame.reverse(), OFF, sample=spec).kept["id"])
    assert first != set(clean_frame(frame, OFF, sample={**spec, "seed": 1}).kept["id"])


def test_sample_applies_after_cleaning_without_strata():
    frame = pl.concat([rows({"A": 20}), rows({"A": 5})])  # the 5 are exact duplicates of the first 5
    kept, rejected, dropped, notes = clean_frame(frame, {**OFF, "exact_dedup": True}, sample={"n": 8, "seed": 0})
    assert (dropped["exact_duplicate"], dropped["sampled_out"], kept.height) == (5, 12, 8)
    assert notes["sample"] == {"n": 8, "seed": 0, "stratify_by": None}


def test_sample_larger_than_the_cleaned_rows_keeps_all_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        kept, _, dropped, notes = clean_frame(rows({"A": 3, "B": 2}, "small"), OFF,
                                              sample={"n": 20, "stratify_by": "scenario", "seed": 0})
    assert kept.height == 5 and dropped["sampled_out"] == 0
    assert notes["sample"]["warning"] == "sample.n = 20 is not less than the 5 cleaned rows: all kept"
    assert "source small: sample.n = 20" in caplog.text


def test_unknown_stratify_by_names_source_and_field():
    with pytest.raises(io.InputError, match=r"source 'sp', field 'sample.stratify_by': no row has the meta field "
                                            r"'scenery' \(meta fields: scenario\)"):
        clean_frame(rows({"A": 3}), OFF, sample={"n": 2, "stratify_by": "scenery", "seed": 0})


def test_clean_source_script_writes_the_sample_to_stats(tmp_path, repo_root, run_script):
    source = tmp_path / "sp.json"
    source.write_text(json.dumps({"A": [{"prompt": f"问题{i}", "response": f"回答{i}", "type": "A"} for i in range(6)],
                                  "B": [{"prompt": f"提问{i}", "response": f"答复{i}", "type": "B"} for i in range(4)]},
                                 ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    run_script("data/clean_source",
               input={"source": str(source), "rules": str(repo_root / "culturalign/data/english_context.yaml")},
               output={k: str(out / f) for k, f in (("clean", "clean.parquet"), ("rejected", "rejected.parquet"),
                                                    ("stats", "stats.json"))},
               params={"name": "sp", "fmt": "safety_prompts", "clean": {"decontaminate": {"enabled": False}},
                       "eval_sets": [], "refine": {"enabled": False}, "refine_judge": None, "llm_cache": None,
                       "usage": None, "sample": {"n": 5, "stratify_by": "scenario", "seed": 0},
                       "english_judge": None, "opinion_judge": None, "path": str(source), "columns": None,
                       "roles": None, "batch_rows": None, "shards": 1, "shard_size": None},
               wildcards={"stage": "safety", "source": "sp"})
    stats = io.read_json(out / "stats.json")
    assert (stats["rows_in"], stats["rows_kept"], stats["dropped"]["sampled_out"]) == (10, 5, 5)
    assert stats["sample"]["strata"] == {"A": {"rows": 6, "taken": 3}, "B": {"rows": 4, "taken": 2}}
    assert stats["normalized"] == {"html_entities": 0}
