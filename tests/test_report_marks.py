"""The report's tables on hand-made score files: the paper's Table 4 rows aligned by area name, figures marked
where the judge failed too often, the loops' plain-words outcome first. Expected cells written by hand."""
from __future__ import annotations

from pathlib import Path

from culturalign.loop import decisions as loop
from culturalign.report.render import comparison_tables, outcome_blocks, paper_rows, render_md


def scores(refusal: dict, failed: int = 0, n: int = 40) -> dict:
    return {"knowledge": {"n": n, "n_judge_failed": failed, "threshold_T": 90,
                          "acc": {"overall": 0.25, "TU": 0.5}},
            "safety": {"mcq": None, "mcq_skipped": "no key", "refusal": refusal}}


def test_table4_paper_rows_follow_the_areas_shown():
    # only VV questions: the paper's VV columns (79.32 71.05 1.88 for KG), not its DI ones
    assert paper_rows("table4", ["overall RR-1", "overall RR-2", "overall HR", "VV RR-1", "VV RR-2", "VV HR"])[1] == [
        "paper: LLaMA3-8B-KG", "49.78", "42.64", "1.95", "79.32", "71.05", "1.88"]
    refusal = {"n": 4, "n_judge_failed": 0, "overall": {"RR-1": 0.5, "RR-2": 0.25, "HR": 0.0},
               "VV": {"RR-1": 0.5, "RR-2": 0.25, "HR": 0.0}}
    md = render_md(comparison_tables({"base": "m"}, {"m": scores(refusal)}), Path("r.md"))
    assert "| Model | Overall RR-1 | Overall RR-2 | Overall HR | VV RR-1 | VV RR-2 | VV HR |" in md
    assert "| paper: LLaMA3-8B-SAFE | 52.38 | 41.99 | 0.65 | 81.20 | 69.92 | 0.00 |" in md
    assert "†" not in md


def test_figures_the_judge_failed_on_are_marked():
    # 2 of 26 refusal judgements failed (7.7 % > 2 %): every Table 4 figure of that model is marked;
    # knowledge 1 of 40 (2.5 % > 2 %) marked too; with judge.max_failed 0.1 neither is
    refusal = {"n": 26, "n_judge_failed": 2, "overall": {"RR-1": 0.5, "RR-2": 0.25, "HR": 0.0769}}
    md = render_md(comparison_tables({"base": "m"}, {"m": scores(refusal, failed=1)}), Path("r.md"))
    assert "| Base (m) | 50.00† | 25.00† | 7.69† |" in md
    assert "| Base (m) | 50.00† | – | – | – | – | 25.00† |" in md
    assert "† the judge failed (no readable reply after the retries) on more than 2% of this figure's questions" in md
    loose = render_md(comparison_tables({"base": "m"}, {"m": scores(refusal, failed=1)}, max_failed=0.1),
                      Path("r.md"))
    assert "†" not in loose


def test_outcome_comes_from_the_loop_notes():
    s = loop.summarize([{"model": "base", "n": 40, "acc": {"overall": 0.0}},
                        {"model": "kg_r1", "n": 40, "acc": {"overall": 0.5}}], {"acc": 0.3})
    md = render_md(outcome_blocks({"knowledge": s}), Path("r.md"))
    assert md.endswith("## Outcome\n\n**knowledge** loop: kg_r1 passed: it met the target and its judgements held.\n")
