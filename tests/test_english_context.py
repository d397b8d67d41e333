"""English-context rules measured on project-written labelled prompts (tests/data/).

english_context_labelled.jsonl (415 prompts) was written with the rules; english_context_heldout.jsonl
(100 prompts) was written after them and never used to tune them: its figures are the honest estimate
of how the rules carry to unseen data.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturalign import io
from culturalign.data.clean import clean_frame

DATA = Path(__file__).parent / "data"
ONLY_ENGLISH = {"html_entities": False, "mojibake": False, "translated_code": False, "length": {"enabled": False}, "cjk": {"enabled": False},
                "exact_dedup": False, "near_dedup": {"enabled": False}, "decontaminate": {"enabled": False}}


def measure(name: str) -> tuple[float, float, int]:
    """(precision, recall, prompts) of the default rules on one labelled file."""
    labelled = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    rows = io.frame([{"id": str(i), "source": "t", "meta": "{}",
                      "messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": "好的。"}]}
                     for i, r in enumerate(labelled)])
    _, rejected, _, _ = clean_frame(rows, ONLY_ENGLISH)
    dropped = {int(i) for i in rejected["id"]}
    truth = {i for i, r in enumerate(labelled) if r["english_context"]}
    true_positive = len(dropped & truth)
    return true_positive / len(dropped), true_positive / len(truth), len(labelled)


@pytest.mark.parametrize("name, size", [("english_context_labelled.jsonl", 400), ("english_context_heldout.jsonl", 100)])
def test_rules_precision_and_recall(name, size):
    precision, recall, n = measure(name)
    assert n >= size
    assert precision >= 0.95 and recall >= 0.85, (precision, recall)


def test_labelled_set_has_both_classes_of_every_kind_listed():
    labelled = [json.loads(line) for line in (DATA / "english_context_labelled.jsonl").read_text(encoding="utf-8").splitlines()]
    kinds = {(r["kind"], r["english_context"]) for r in labelled}
    for kind in ("letters", "spelling", "rhyme", "quoted", "phoneme", "grammar", "game", "us"):
        assert (kind, True) in kinds
    for kind in ("cn_rhyme", "cn_grammar", "into_zh", "usa"):
        assert (kind, False) in kinds
    assert len({r["prompt"] for r in labelled}) == len(labelled)
