"""Per-filter precision and recall of the data stage's row judgements on real, hand-labelled material.

    python bench/data/filters.py [--data ../shared/data/alpaca_zh_demo/alpaca_zh_demo.json]

Runs the cleaning filters with the DEFAULT config (rules alone, no judge) on the 1,000 rows of
alpaca_zh_demo (a public machine-translated Chinese alpaca set nobody on the team wrote) and scores
each filter against bench/data/labels/alpaca_zh_demo.labels.jsonl (labelled by reading, before any rule
used them; see bench/data/labels/GUIDE.md). Even indices are the development half the rules were tuned
on, odd indices the test half they never were: both are reported, separately. Prints and writes
bench/results/filters.json; only aggregate figures, never rows.

Classes: English-bound = english_bound 2 (label 1, doubtful, is left out of its precision and recall);
translated code = code "translated"; broken = broken 1, each answer check against its broken_kind;
unfit = any of the three. `removed` is a class's recall by any filter (a row dropped for another
reason is gone all the same), `recall` by the filter of that class.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from culturalign import io  # noqa: E402
from culturalign.data.clean import clean_frame  # noqa: E402
from culturalign.data.formats import read_source  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean import publish  # noqa: E402

LABELS = ROOT / "bench" / "data" / "labels" / "alpaca_zh_demo.labels.jsonl"
DATA = ROOT.parent / "shared" / "data" / "alpaca_zh_demo" / "alpaca_zh_demo.json"
# filter -> (label field, value that is its class)
CLASSES = {"english_context": ("english_bound", 2), "translated_code": ("code", "translated"),
           "missing_content": ("broken_kind", "missing_content"), "answer_language": ("broken_kind", "language"),
           "answer_length": ("broken_kind", "length"), "answer_count": ("broken_kind", "count"),
           "degenerate": ("broken_kind", "degenerate"), "truncated": ("broken_kind", "truncated")}


def labels(data: list[dict]) -> list[dict]:
    """The labels, checked against the data by their key (a changed file is an error, not a silent mismatch)."""
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        rec = data[row["index"]]
        key = hashlib.sha1((rec["instruction"] + "\x1f" + rec.get("input", "")).encode()).hexdigest()[:10]
        if key != row["key"]:
            raise SystemExit(f"{LABELS}: row {row['index']}: key {row['key']} does not match the data ({key})")
    return rows


def unfit(label: dict) -> bool:
    return label["english_bound"] == 2 or label["code"] == "translated" or label["broken"] == 1


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def score(rows: list[dict], reason: dict[int, str | None]) -> dict:
    """The figures of one half: per filter, per class, and for the whole."""
    result: dict = {"rows": len(rows), "filters": {}}
    for name, (field, value) in CLASSES.items():
        judged = [r for r in rows if not (field == "english_bound" and r["english_bound"] == 1)]
        positive = [r for r in judged if r[field] == value]
        dropped = [r for r in judged if reason[r["index"]] == name]
        hits = sum(r[field] == value for r in dropped)
        result["filters"][name] = {
            "dropped": len(dropped), "class_rows": len(positive), "precision": _ratio(hits, len(dropped)),
            "recall": _ratio(hits, len(positive)),
            "removed": _ratio(sum(reason[r["index"]] is not None for r in positive), len(positive)),
            "precision_unfit": _ratio(sum(unfit(r) for r in dropped), len(dropped))}
    others = {}
    for r in rows:
        why = reason[r["index"]]
        if why is not None and why not in CLASSES:
            entry = others.setdefault(why, {"dropped": 0, "unfit": 0})
            entry["dropped"] += 1
            entry["unfit"] += unfit(r)
    result["other_reasons"] = others
    kept = [r for r in rows if reason[r["index"]] is None]
    sound = [r for r in rows if not unfit(r)]
    broken = [r for r in rows if r["broken"] == 1]
    result["broken_removed"] = _ratio(sum(reason[r["index"]] is not None for r in broken), len(broken))
    result["kept"] = len(kept)
    result["kept_unfit_share"] = _ratio(sum(unfit(r) for r in kept), len(kept))
    result["sound_removed_share"] = _ratio(sum(reason[r["index"]] is not None for r in sound), len(sound))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "filters.json"))
    args = parser.parse_args()
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    rows = labels(data)
    frame, reader_rejected = read_source(args.data, "alpaca_zh_demo", "alpaca")
    kept, rejected, dropped, notes = clean_frame(frame, {})
    assert frame.height + reader_rejected.height == len(data) == kept.height + rejected.height + reader_rejected.height
    by_id = dict(pl.concat([rejected.select("id", "drop_reason"), reader_rejected.select("id", "drop_reason")])
                 .iter_rows())
    reason = {i: by_id.get(io.row_id("alpaca_zh_demo", i)) for i in range(len(data))}
    result = {"data": str(args.data), "config": "default (rules alone)", "filters_run": notes["filters"],
              "development_half": score([r for r in rows if r["index"] % 2 == 0], reason),
              "test_half": score([r for r in rows if r["index"] % 2 == 1], reason)}
    publish(result, args.out)


if __name__ == "__main__":
    main()
