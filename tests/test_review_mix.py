"""Review sheets and decisions (culturalign.data.review), the training mix (culturalign.data.mix)."""
from __future__ import annotations

import csv
import logging

import polars as pl
import pytest

from culturalign import io
from culturalign.data.mix import mix
from culturalign.data import review as review_mod
from culturalign.data.review import COLUMNS, read_decisions, review_sheet, write_sheet


def rows(source: str, n: int) -> pl.DataFrame:
    return io.frame([{"id": io.row_id(source, i), "source": source, "meta": "{}",
                      "messages": [{"role": "user", "content": f"问题{i}"}, {"role": "assistant", "content": f"回答{i}"},
                                   {"role": "user", "content": f"追问{i}"}, {"role": "assistant", "content": "好"}]}
                     for i in range(n)])


def test_review_sheet_sample_is_stable():
    kept = rows("src", 40)
    sheet = review_sheet(kept, 10, seed=0)
    assert sheet.columns == list(COLUMNS) and sheet.height == 10
    assert sheet.equals(review_sheet(kept.reverse(), 10, seed=0))          # input order does not matter
    assert sheet["id"].to_list() == review_sheet(kept, 30, seed=0)["id"].to_list()[:10]  # growing n extends it
    assert sheet["id"].to_list() != review_sheet(kept, 10, seed=1)["id"].to_list()
    first = sheet.row(0, named=True)
    i = kept["id"].to_list().index(first["id"])
    assert (first["prompt"], first["answer"]) == (f"问题{i}\n---\n追问{i}", f"回答{i}\n---\n好")
    assert (first["decision"], first["note"]) == ("", "")
    assert review_sheet(kept, 100, seed=0).height == 40


def test_review_sheet_round_trip(tmp_path):
    sheet = review_sheet(rows("src", 5), 5, seed=0)
    path = tmp_path / "review.csv"
    write_sheet(sheet, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets read Chinese right
    table = list(csv.DictReader(open(path, encoding="utf-8-sig", newline="")))
    table[0]["decision"], table[1]["decision"], table[2]["decision"] = "Reject", " ACCEPT ", "reject"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    assert read_decisions(path) == {table[0]["id"], table[2]["id"]}


def test_read_decisions_bad_value_names_the_line(tmp_path):
    path = tmp_path / "decisions.csv"
    path.write_text('id,decision,note\na,accept,\nb,"reject","two\nlines"\nc,maybe,\n', encoding="utf-8")
    with pytest.raises(io.InputError, match=r"decisions\.csv, line 5, field 'decision': unknown decision 'maybe'"):
        read_decisions(path)


def test_read_decisions_missing_column_and_empty_file(tmp_path):
    path = tmp_path / "decisions.csv"
    path.write_text("id,verdict\na,reject\n", encoding="utf-8")
    with pytest.raises(io.InputError, match="line 1, field 'decision': missing column"):
        read_decisions(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(io.InputError, match="empty decisions file"):
        read_decisions(path)


def test_read_decisions_unknown_ids_only_warn(tmp_path, caplog):
    path = tmp_path / "decisions.csv"
    path.write_text("id,decision\na,reject\nghost,reject\nb,\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="culturalign.data.review"):
        assert read_decisions(path, known_ids=["a", "b"]) == {"a", "ghost"}
    assert "1 id(s) not in the source, ignored: ghost" in caplog.text


def test_mix_caps_are_deterministic_and_sorted():
    frames = {"b": rows("b", 30), "a": rows("a", 10)}
    out = mix(frames, {"b": 12, "a": None}, seed=0)
    assert out.schema == pl.Schema(io.SCHEMA)
    assert out.group_by("source").len().sort("source").rows() == [("a", 10), ("b", 12)]
    assert out.select("source", "id").rows() == sorted(out.select("source", "id").rows())
    again = mix({"a": rows("a", 10), "b": rows("b", 30).reverse()}, {"b": 12}, seed=0)
    assert out.equals(again)
    other_seed = mix(frames, {"b": 12}, seed=1)
    assert set(other_seed["id"]) != set(out["id"])
    # a row's rank depends only on its own id: with more rows, an old row in the cap was in it before
    grown = set(mix({"b": rows("b", 60)}, {"b": 12}, seed=0)["id"])
    old_in_grown = grown & set(rows("b", 30)["id"])
    assert old_in_grown and old_in_grown <= set(out.filter(pl.col("source") == "b")["id"])


def test_mix_empty():
    assert mix({}, {}, seed=0).schema == pl.Schema(io.SCHEMA)
    assert mix({"a": io.empty()}, {"a": 3}, seed=0).height == 0


def test_mix_and_review_scripts(tmp_path, run_script):
    inputs = []
    for source, n in (("a", 5), ("b", 20)):
        path = tmp_path / "knowledge" / source / "clean.parquet"
        io.write_parquet(rows(source, n), path)
        inputs.append(str(path))
    train = tmp_path / "train.parquet"
    run_script("data/mix", input=inputs, output=[str(train)],
               params={"caps": {"a": None, "b": 8}, "seed": 0})
    assert pl.read_parquet(train).equals(mix({"a": rows("a", 5), "b": rows("b", 20)}, {"b": 8}, seed=0))

    sheet = tmp_path / "review.csv"
    run_script("data/review_sheet", input=[inputs[1]], output=[str(sheet)],
               params={"sample": 4, "seed": 0, "clean": {}})
    written = pl.read_csv(sheet)
    assert written.columns == list(COLUMNS)
    assert written["id"].to_list() == review_sheet(rows("b", 20), 4, seed=0)["id"].to_list()


def conversation(i: int, prompt: str, answer: str) -> dict:
    return {"id": f"r{i}", "source": "s", "meta": "{}",
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def test_review_sheet_puts_rows_the_rules_are_unsure_of_first():
    plain = [conversation(i, f"请介绍第{i}个节日的习俗。", "节日里人们会团聚、吃饭、走亲访友。") for i in range(10)]
    unsure = [conversation(20, "学英语应该先学语法还是先学单词？", "先打好词汇基础，再系统学习语法。"),
              conversation(21, "“hello”翻译成中文是什么？", "你好。"),
              conversation(22, "鲸鱼是鱼吗？", "否")]
    kept = io.frame(plain + unsure)
    sheet = review_sheet(kept, 5, seed=0, clean_cfg={"length": {"min_answer": 2}})
    flags = dict(sheet.select("id", "flags").iter_rows())
    assert set(sheet["id"].to_list()[:3]) == {"r20", "r21", "r22"}
    assert flags["r20"] == "english_context? mentions English, the US, letters, words, rhymes, grammar terms or sentences"
    assert flags["r21"] == "english_context? quotes an English word"
    assert flags["r22"] == "too_short_answer? kept: a short answer right for its task"
    assert [flags[i] for i in sheet["id"].to_list()[3:]] == ["", ""]
    assert sheet["id"].to_list() == review_sheet(kept, 8, seed=0, clean_cfg={"length": {"min_answer": 2}})["id"].to_list()[:5]


def test_drop_summary_counts_and_three_examples_per_reason():
    rows_ = [conversation(i, f"重复的问题{i % 2}", "重复的回答") for i in range(6)] + \
        [conversation(10, "英语里哪些单词和cat押韵？", "hat, bat"), conversation(11, "用 ROT13 编码：你好", "...")]
    reasons = ["exact_duplicate"] * 6 + ["english_context"] * 2
    rejected = io.frame([r | {"drop_reason": why} for r, why in zip(rows_, reasons)], io.REJECTED_SCHEMA)
    summary = review_mod.drop_summary(rejected)
    assert list(summary) == ["exact_duplicate", "english_context"]  # most frequent first
    assert summary["exact_duplicate"]["count"] == 6 and len(summary["exact_duplicate"]["examples"]) == 3
    assert summary["english_context"]["count"] == 2
    rules = {e["id"]: e["rule"] for e in summary["english_context"]["examples"]}
    assert rules["r11"].startswith("ciphers and encodings of English text")
    assert rules["r10"].startswith("operations on English words")
    assert summary == review_mod.drop_summary(rejected.reverse())  # stable picks
    assert review_mod.drop_summary(io.empty(io.REJECTED_SCHEMA)) == {}


def test_mix_files_equals_mix_in_memory(tmp_path):
    """The bounded-memory mix (buckets of 7 rows here) writes exactly what mix() returns."""
    from culturalign.data.mix import mix_files
    frames = {"b": rows("b", 40), "a": rows("a", 25)}
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.parquet"
        io.write_parquet(frame, paths[name])
    taken = mix_files(paths, {"b": 12, "a": None}, 0, tmp_path / "train.parquet", batch_rows=7)
    assert taken == {"a": 25, "b": 12}
    assert pl.read_parquet(tmp_path / "train.parquet").equals(mix(frames, {"b": 12, "a": None}, 0))
