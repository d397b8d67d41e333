"""The paper's own arithmetic (arXiv 2406.18192, Tables 2-4) reproduced by our metric definitions."""
from __future__ import annotations

from collections import Counter

import pytest

from culturalign.evaluate.evalsets import load
from culturalign.evaluate.metrics import area_mean, knowledge_report, mcq_block_from_correct, refusal_block

V0_SIZES = {"DI": 1114, "VV": 399, "CV": 164, "IR": 145, "SR": 39}
# Table 3: Overall, then DI VV CV IR SR, in percent as printed.
TABLE3 = {
    "LLaMA3-8B": (19.63, [22.71, 22.31, 25.61, 17.24, 10.26]),
    "LLaMA3-8B-KG": (69.30, [39.32, 81.45, 92.07, 77.24, 56.41]),
    "LLaMA3-8B-SAFE": (72.06, [45.42, 80.95, 93.29, 76.55, 64.10]),
}


@pytest.mark.parametrize("model", TABLE3)
def test_table3_overall_is_the_mean_of_the_areas(model):
    overall, areas = TABLE3[model]
    # Each printed area value is a whole count out of the v0 file's area size...
    counts = [round(v / 100 * n) for v, n in zip(areas, V0_SIZES.values())]
    assert [round(100 * c / n, 2) for c, n in zip(counts, V0_SIZES.values())] == areas
    # ... and our mcq block, given those counts, prints the paper's Overall (the pooled share differs).
    area_of, correct = [], []
    for (area, n), c in zip(V0_SIZES.items(), counts):
        area_of += [area] * n
        correct += [True] * c + [False] * (n - c)
    block = mcq_block_from_correct(area_of, correct, answer_key="gold")
    assert round(100 * block["acc"]["overall"], 2) == pytest.approx(overall, abs=0.011)
    assert round(100 * area_mean(dict(zip(V0_SIZES, [v / 100 for v in areas]))), 2) == pytest.approx(overall, abs=0.006)
    assert block["n_by_area"] == V0_SIZES and block["pooled"] == round(sum(counts) / sum(V0_SIZES.values()), 4)
    assert abs(block["pooled"] - overall / 100) > 0.02


def test_v0_mcq_file_has_the_paper_area_sizes(shared_data):
    items = load(shared_data / "chisafetybench/mcq_v0_2024-06-06.json")
    assert Counter(it["dim"] for it in items) == V0_SIZES
    assert all(it["options"] and len(it["options"]) >= 2 for it in items)
    # No option keeps the trailing no-break space some v0 options are published with.
    assert not [it["id"] for it in items if any(v != v.strip() for v in it["options"].values())]


# Table 2 counts per A-Eval dimension (TU 186, IE 125, TG 188, LR 129, TP 50), worked out by hand from the
# paper's KG row: 91/186 = 48.92, 47/125 = 37.60, 105/188 = 55.85, 47/129 = 36.43 (printed 36.44), 12/50 = 24.00;
# together 302 of 678 = 44.54, the printed Overall.
AEVAL_SIZES = {"TU": 186, "IE": 125, "TG": 188, "LR": 129, "TP": 50}
KG_HITS = {"TU": 91, "IE": 47, "TG": 105, "LR": 47, "TP": 12}


def test_table2_overall_pools_every_question():
    items, scores = [], []
    for dim, n in AEVAL_SIZES.items():
        items += [{"id": f"{dim}{k}", "dim": dim} for k in range(n)]
        scores += [95] * KG_HITS[dim] + [None] + [0] * (n - KG_HITS[dim] - 1)   # one judge failure per dim: a miss
    report = knowledge_report(items, ["答"] * len(items), scores, model="kg", benchmark="a-eval", judge="j",
                              threshold=90)
    assert report["acc"] == {"overall": 0.4454, "TU": 0.4892, "IE": 0.376, "TG": 0.5585, "LR": 0.3643, "TP": 0.24}
    assert (report["n"], report["n_judge_failed"]) == (678, 5)


# Table 4 counts of the KG row, worked out by hand (462 questions: DI 196, VV 266):
# DI 8 responsible refusals (4.08), 11 direct (RR-1 19/196 = 9.69), 4 harmful (2.04);
# VV 189 responsible (71.05), 22 direct (RR-1 211/266 = 79.32), 5 harmful (1.88);
# overall RR-1 230/462 = 49.78, RR-2 197/462 = 42.64, HR 9/462 = 1.95: the paper's row.
KG_DEGREES = {"DI": {3: 8, 2: 11, 0: 4, 1: 173}, "VV": {3: 189, 2: 22, 0: 5, 1: 50}}


def test_table4_counts_every_risky_question():
    items, degrees = [], []
    for area, counts in KG_DEGREES.items():
        for degree, count in counts.items():
            items += [{"id": f"{area}{len(items)}", "dim": area} for _ in range(count)]
            degrees += [degree] * count
    block = refusal_block(items, ["答"] * len(items), degrees)
    assert block["n"] == 462
    assert block["overall"] == {"RR-1": 0.4978, "RR-2": 0.4264, "HR": 0.0195}
    assert block["DI"] == {"RR-1": 0.0969, "RR-2": 0.0408, "HR": 0.0204}
    assert block["VV"] == {"RR-1": 0.7932, "RR-2": 0.7105, "HR": 0.0188}
    # the judge failing on the first DI question (a responsible refusal) can only make the model look worse:
    # RR-1 229/462, RR-2 196/462, HR 10/462
    assert degrees[0] == 3
    failed = refusal_block(items, ["答"] * len(items), [None] + degrees[1:])
    assert failed["overall"] == {"RR-1": 0.4957, "RR-2": 0.4242, "HR": 0.0216}
