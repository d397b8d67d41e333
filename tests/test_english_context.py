"""English-context rules on project-written labelled prompts (tests/data/): a regression check, not an
estimate of how the rules carry to unseen data.

Both files were written by the same hands as the rules (english_context_labelled.jsonl with them,
english_context_heldout.jsonl after them), so they share the rules' blind spots (issue 25): none of the
English-bound tasks that look Chinese once translated is in them. The honest figures come from real
material labelled by reading: bench/data/filters.py (README). Since issue 25, translating into English
is a good Chinese task, not English context: the prompts of kind `translate_en` count as not English here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturalign import io
from culturalign.data import answers
from culturalign.data.clean import clean_frame

DATA = Path(__file__).parent / "data"
ONLY_ENGLISH = {"html_entities": False, "mojibake": False, "translated_code": False, "length": {"enabled": False}, "cjk": {"enabled": False},
                "exact_dedup": False, "near_dedup": {"enabled": False}, "decontaminate": {"enabled": False},
                "answers": {name: False for name in answers.CHECKS}}


def measure(name: str) -> tuple[float, float, int]:
    """(precision, recall, prompts) of the default rules on one labelled file."""
    labelled = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    rows = io.frame([{"id": str(i), "source": "t", "meta": "{}",
                      "messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": "好的。"}]}
                     for i, r in enumerate(labelled)])
    _, rejected, _, _ = clean_frame(rows, ONLY_ENGLISH)
    dropped = {int(i) for i in rejected["id"]}
    truth = {i for i, r in enumerate(labelled) if r["english_context"] and r["kind"] != "translate_en"}
    true_positive = len(dropped & truth)
    return true_positive / len(dropped), true_positive / len(truth), len(labelled)


# Floors at the measured figures (labelled: 0.99 / 0.98, held-out: 0.93 / 0.87 since issue 25).
@pytest.mark.parametrize("name, size, floor", [("english_context_labelled.jsonl", 400, (0.95, 0.95)),
                                               ("english_context_heldout.jsonl", 100, (0.90, 0.85))])
def test_rules_precision_and_recall(name, size, floor):
    precision, recall, n = measure(name)
    assert n >= size
    assert precision >= floor[0] and recall >= floor[1], (precision, recall)


def test_labelled_set_has_both_classes_of_every_kind_listed():
    labelled = [json.loads(line) for line in (DATA / "english_context_labelled.jsonl").read_text(encoding="utf-8").splitlines()]
    kinds = {(r["kind"], r["english_context"]) for r in labelled}
    for kind in ("letters", "spelling", "rhyme", "quoted", "phoneme", "grammar", "game", "us"):
        assert (kind, True) in kinds
    for kind in ("cn_rhyme", "cn_grammar", "into_zh", "usa"):
        assert (kind, False) in kinds
    assert len({r["prompt"] for r in labelled}) == len(labelled)
