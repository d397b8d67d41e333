"""The paper's own arithmetic (arXiv 2406.18192, Tables 2-4) reproduced by our metric definitions."""
from __future__ import annotations

from collections import Counter

import pytest

from culturalign.evaluate.evalsets import load
from culturalign.evaluate.metrics import area_mean, mcq_block_from_correct

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


@pytest.mark.parametrize("values,n", [((44.54, 43.51), 678), ((49.78, 42.64, 1.95, 52.38, 41.99, 0.65), 462)])
def test_tables_2_and_4_pool_every_question(values, n):
    """Table 2 Overall (KG, SAFE) and Table 4 Overall (KG, SAFE) are whole counts out of all questions."""
    assert all(round(100 * round(v / 100 * n) / n, 2) == v for v in values)
