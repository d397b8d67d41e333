"""Sources as they are published (culturalign/data/readers.py, formats.read_source): Parquet, Arrow IPC,
a datasets save_to_disk directory, gzip/zstd/bz2 JSON, a glob of shards, with and without a `columns:`
mapping; and the errors for what is none of these. Every file is written here with pyarrow or datasets."""
from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from culturalign import io
from culturalign.data.formats import detect_format, read_source

ALPACA = [{"instruction": "故宫在哪里？", "input": "", "output": "故宫位于北京市中心。", "category": "地理"},
          {"instruction": "把句子改写得更正式。", "input": "咱们明天见。", "output": "我们明日再会。", "category": "改写"},
          {"instruction": "长城有多长？", "input": "", "output": "两万多千米。", "category": "地理"}]
# The same rows as a set published with other field names (prompt/query/response).
RENAMED = [{"prompt": r["instruction"], "query": r["input"], "response": r["output"], "category": r["category"]}
           for r in ALPACA]
COLUMNS = {"instruction": "prompt", "input": "query", "output": "response"}
EXPECTED = [[("user", "故宫在哪里？"), ("assistant", "故宫位于北京市中心。")],
            [("user", "把句子改写得更正式。\n咱们明天见。"), ("assistant", "我们明日再会。")],
            [("user", "长城有多长？"), ("assistant", "两万多千米。")]]


def turns(rows) -> list[list[tuple[str, str]]]:
    return [[(m["role"], m["content"]) for m in messages] for messages in rows["messages"].to_list()]


def jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def write_parquet(path: Path, records: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def write_arrow(path: Path, records: list[dict], stream: bool = False) -> Path:
    table = pa.Table.from_pylist(records)
    with pa.OSFile(str(path), "wb") as sink:
        writer = (pa.ipc.new_stream if stream else pa.ipc.new_file)(sink, table.schema)
        writer.write_table(table)
        writer.close()
    return path


def write_zst(path: Path, data: bytes) -> Path:
    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write(data)
    return path


WRITERS = {
    "parquet": lambda d, recs: write_parquet(d / "train.parquet", recs),
    "arrow": lambda d, recs: write_arrow(d / "train.arrow", recs),
    "arrow_stream": lambda d, recs: write_arrow(d / "train.arrows", recs, stream=True),
    "jsonl.gz": lambda d, recs: (d / "train.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes(recs))) and d / "train.jsonl.gz",
    "json.zst": lambda d, recs: write_zst(d / "train.json.zst", json.dumps(recs, ensure_ascii=False).encode()),
    "json.bz2": lambda d, recs: (d / "train.json.bz2").write_bytes(bz2.compress(json.dumps(recs).encode())) and d / "train.json.bz2",
}


@pytest.mark.parametrize("kind", list(WRITERS))
@pytest.mark.parametrize("mapped", [False, True])
def test_published_containers(tmp_path, kind, mapped):
    path = WRITERS[kind](tmp_path, RENAMED if mapped else ALPACA)
    columns = COLUMNS if mapped else None
    assert detect_format(path, columns=columns) == "alpaca"
    rows, rejected = read_source(path, "pub", columns=columns)
    assert rejected.height == 0 and turns(rows) == EXPECTED
    assert rows["id"].to_list() == [io.row_id("pub", i) for i in range(3)]
    assert json.loads(rows["meta"][1]) == {"category": "改写"}   # unmapped fields still go to meta


def test_save_to_disk_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(RENAMED).save_to_disk(str(tmp_path / "ds"))
    rows, rejected = read_source(tmp_path / "ds", "hub", columns=COLUMNS)
    assert rejected.height == 0 and turns(rows) == EXPECTED


def test_glob_and_directory_of_shards_are_one_source(tmp_path):
    for i, record in enumerate(ALPACA):   # train-00000-of-00003.parquet ...: one row each
        write_parquet(tmp_path / f"train-{i:05d}-of-00003.parquet", [record])
    (tmp_path / "README.md").write_text("not data")
    for path in (tmp_path / "train-*.parquet", tmp_path):
        rows, _ = read_source(str(path), "shards")
        assert turns(rows) == EXPECTED
        assert rows["id"].to_list() == [io.row_id("shards", i) for i in range(3)]   # numbered across files


def test_sharegpt_with_role_tags(tmp_path):
    records = [{"dialog": [{"speaker": "user", "text": "你好"}, {"speaker": "assistant", "text": "你好！"}]}]
    path = write_parquet(tmp_path / "chat.parquet", records)
    rows, rejected = read_source(path, "chat", "sharegpt", columns={"conversations": "dialog"},
                                 roles={"role_tag": "speaker", "content_tag": "text", "user_tag": "user",
                                        "assistant_tag": "assistant"})
    assert rejected.height == 0 and turns(rows) == [[("user", "你好"), ("assistant", "你好！")]]


def test_one_line_json_array_is_streamed_in_pieces(tmp_path, monkeypatch):
    from culturalign.data import readers
    monkeypatch.setattr(readers, "TEXT_CHUNK", 16)   # every record spans several reads
    path = tmp_path / "a.json"
    path.write_text(json.dumps(ALPACA * 20, ensure_ascii=False), encoding="utf-8")
    rows, rejected = read_source(path, "a", "alpaca")
    assert rejected.height == 0 and turns(rows) == EXPECTED * 20


def test_a_range_of_records(tmp_path):
    from culturalign.data.formats import read_batches
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl_bytes(ALPACA * 3))
    (rows, _), = read_batches(path, "a", "alpaca", start=4, stop=7)
    assert rows["id"].to_list() == [io.row_id("a", i) for i in (4, 5, 6)]
    assert turns(rows) == [EXPECTED[1], EXPECTED[2], EXPECTED[0]]


# ---------------------------------------------------------------- what a file is when it is none of these

def test_parquet_given_as_json(tmp_path):
    path = write_parquet(tmp_path / "train.json", ALPACA)
    with pytest.raises(io.InputError, match=r"train\.json: this is a Parquet file, not JSON text"):
        io.read_json(path)
    assert turns(read_source(path, "p")[0]) == EXPECTED   # as a training source it is read for what it is


def test_truncated_gzip(tmp_path):
    data = gzip.compress(jsonl_bytes(ALPACA * 50))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(io.InputError, match=r"cut\.jsonl\.gz: source 'g': the gzip stream is damaged or truncated"):
        read_source(path, "g")


def test_truncated_zstd(tmp_path):
    path = write_zst(tmp_path / "cut.json.zst", json.dumps(ALPACA * 50, ensure_ascii=False).encode())
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(io.InputError, match=r"cut\.json\.zst: source 'z': the zstd stream is damaged or truncated"):
        read_source(path, "z")


def test_mapping_names_a_missing_column(tmp_path):
    path = write_parquet(tmp_path / "renamed.parquet", RENAMED)
    with pytest.raises(io.InputError, match=r"renamed\.parquet, field 'columns': source 'm': columns: 'answer' "
                                            r"\(for output\) not in the first record"):
        read_source(path, "m", columns={"instruction": "prompt", "output": "answer"})


def test_a_zip_is_named(tmp_path):
    import zipfile
    path = tmp_path / "data.json"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.json", "[]")
    with pytest.raises(io.InputError, match=r"data\.json: source 'z': this is a zip archive \(or \.xlsx\): a source must"):
        read_source(path, "z")


def test_no_file_matches_the_glob(tmp_path):
    with pytest.raises(io.InputError, match=r"\*\.parquet: source 'none': no file matches this glob"):
        read_source(str(tmp_path / "*.parquet"), "none")


def test_a_grouped_object_is_cut_by_position(tmp_path):
    """Safety-Prompts' {scenario: [records]}: a shard's range counts records in file order."""
    from culturalign.data.formats import read_batches
    path = tmp_path / "grouped.json"
    record = {"prompt": "问题", "response": "回答"}
    path.write_text(json.dumps({"A": [record] * 2, "B": [record] * 3}, ensure_ascii=False), encoding="utf-8")
    (rows, _), = read_batches(path, "g", "safety_prompts", start=1, stop=4)
    assert rows["id"].to_list() == [io.row_id("g", k) for k in ("A/1", "B/0", "B/1")]
