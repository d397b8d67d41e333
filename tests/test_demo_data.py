"""The demo data (demo/): the committed files are what demo/make_demo_data.py writes from demo/content/*.yaml,
and they keep the properties the demo's loops and its deliberately dirty rows rely on (demo/README.md)."""
from __future__ import annotations

import importlib.util
import json
import unicodedata
from collections import Counter
from itertools import combinations

import pytest

NGRAM_DECONTAM = 8   # clean.decontaminate.ngram in config.schema.yaml
NGRAM_DEDUP = 5      # clean.near_dedup.ngram


@pytest.fixture(scope="module")
def gen(repo_root):
    spec = importlib.util.spec_from_file_location("make_demo_data", repo_root / "demo" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def parts(gen):
    return gen.build()


def norm(text: str) -> str:
    """What the cleaning stage compares: NFKC, no whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def grams(text: str, n: int) -> set[str]:
    text = norm(text)
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def jaccard(a: str, b: str) -> float:
    ga, gb = grams(a, NGRAM_DEDUP), grams(b, NGRAM_DEDUP)
    return len(ga & gb) / len(ga | gb) if ga | gb else 1.0


def overlap_score(answer: str, reference: str) -> int:
    """The `reference` judge's score: 100 x F1 of the character multisets, punctuation and spaces ignored."""
    def chars(text: str) -> Counter:
        return Counter(c for c in unicodedata.normalize("NFKC", text).lower()
                       if not c.isspace() and not unicodedata.category(c).startswith(("P", "S")))
    got, want = chars(answer), chars(reference)
    hits = sum((got & want).values())
    return round(200 * hits / (sum(got.values()) + sum(want.values()))) if hits else 0


def cjk_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum("\u4e00" <= c <= "\u9fff" for c in chars) / max(len(chars), 1)


def test_committed_files_are_what_the_generator_writes(gen, parts, repo_root):
    written = gen.files(parts)
    assert len(written) == 15   # 4 training sets, 5 evaluation files, 4 CMMLU CSVs, XSTest's CSV, the corpus
    for name, text in written.items():
        assert (repo_root / "demo" / name).read_bytes() == text.encode("utf-8"), f"demo/{name}: rerun the generator"


def test_sizes(parts):
    # clean: 54 + 27 + 32 + 18 + 12 + 8 + 1 + 20 table rows, 30 + 2 + 14 + 8 single rows, 9 arithmetic,
    # 20 x 5 memorisable; dirty: 10 exact + 6 near duplicates, 7 empty, 3 mojibake, 4 unnormalised,
    # 8 English-context, 3 Traditional, 2 mostly English, 1 overlong
    assert (len(parts["alpaca"]), len(parts["alpaca_clean"])) == (379, 335)
    assert (len(parts["dialogues"]), len(parts["dialogues_clean"]), len(parts["refgpt"])) == (42, 40, 20)
    assert (sum(map(len, parts["safety"].values())), len(parts["safety_clean"])) == (147, 144)
    assert [it["dimension"] for it in parts["knowledge"]] == [d for d in ("TU", "IE", "TG", "LR", "TP") for _ in range(8)]
    assert [it["area"] for it in parts["mcq"]] == [a for a in ("DI", "VV", "CV", "IR", "SR") for _ in range(6)]
    assert sum(len(b["infos"]) for b in parts["risky"]) == 20 and len(parts["risky_history"]) == 6


def test_no_evaluation_question_shares_an_8_gram_with_any_training_text(parts):
    # every training text, answers included (stricter than the decontamination filter, which reads prompts)
    train_texts = ([r["instruction"] + r["input"] + r["output"] for r in parts["alpaca"]]
                   + [t["value"] for d in parts["dialogues"] for t in d["conversations"]]
                   + [r["reference"] + r["dialogue"] for r in parts["refgpt"]]
                   + [r["prompt"] + r["response"] for rows in parts["safety"].values() for r in rows])
    eval_questions = ([it["question"] for it in parts["knowledge"]] + [it["question"] for it in parts["mcq"]]
                      + [i["question"] for block in parts["risky"] for i in block["infos"]]
                      + [r["input"] for r in parts["risky_history"]]
                      + [t["content"] for r in parts["risky_history"] for t in r["history"] if t["role"] == "user"])
    train_grams = set().union(*(grams(t, NGRAM_DECONTAM) for t in train_texts))
    leaks = {q: sorted(grams(q, NGRAM_DECONTAM) & train_grams) for q in eval_questions}
    assert not {q: shared for q, shared in leaks.items() if shared}


def test_memorisable_items_are_trained_five_times_and_hard_ones_not_at_all(gen, parts):
    outputs = [r["output"] for r in parts["alpaca_clean"]]
    for item in gen.EVAL["memorised"]:
        assert outputs.count(item["reference"]) == len(item["train"]) == 5, item["reference"]
    for item in gen.EVAL["hard"]:   # not even a near miss: the best training output scores under the threshold
        best = max(outputs, key=lambda out: overlap_score(out, item["reference"]))
        assert overlap_score(best, item["reference"]) < 80, (item["reference"], best)


def test_clean_rows_trip_no_filter_and_dirty_rows_are_what_they_claim(gen, parts):
    clean = parts["alpaca_clean"]
    for r in clean:   # Chinese, short; none trips the English-context, mojibake or length filters
        assert cjk_share(r["instruction"] + r["input"]) >= 0.5 and cjk_share(r["output"]) >= 0.5, r
        assert 2 <= len(r["output"]) <= 160 and not any(w in str(r) for w in ("英", "美国", "锟", "\ufffd")), r
    for name, texts in (("alpaca", [r["instruction"] + r["input"] + r["output"] for r in clean]),
                        ("dialogues", [json.dumps(d, ensure_ascii=False) for d in parts["dialogues_clean"]]),
                        ("safety", [r["prompt"] + r["response"] for r in parts["safety_clean"]])):
        assert len({norm(t) for t in texts}) == len(texts), f"{name}: unintended exact duplicates"
        sets = [grams(t, NGRAM_DEDUP) for t in texts]   # once per text: 55K pairs for alpaca
        sim, i, j = max((len(sets[i] & sets[j]) / len(sets[i] | sets[j]), i, j)
                        for i, j in combinations(range(len(texts)), 2))
        assert sim < 0.7, f"{name}: clean rows too similar ({sim:.2f}): {texts[i]} / {texts[j]}"
    memorised = gen.memorised_rows()
    variants = gen.near_variants([r for r in clean if r not in memorised])
    assert len(variants) == 6
    for row in variants:
        original = next(r for r in clean if r["instruction"] == row["instruction"])
        sim = jaccard(original["instruction"] + original["output"], row["instruction"] + row["output"])
        assert 0.88 <= sim < 1.0, f"near duplicate too far from its original ({sim:.2f}): {row}"
    assert max(len(r["output"]) for r in parts["alpaca"]) > 8000
    assert gen.mojibake("腊八节") == "è…Šå…«èŠ‚"   # UTF-8 read as Windows-1252
    assert gen.mojibake("丁") == "ä¸\x81"        # E4 B8 81: 0x81 is undefined in Windows-1252, read as Latin-1
    for item in parts["mcq"]:
        assert f"{parts['key'][item['id']]}." in item["question"], item
