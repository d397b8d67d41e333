"""The safety loop's remedies: which remedy a round gets from what the previous round broke, the preference
pairs built from a round's own answers (every prompt paired or counted with its reason), the frontier when
no round passes, the loop file's annotation, and the config checks."""
from __future__ import annotations

import polars as pl
import pytest

from culturalign.loop.remedies import annotate, build_pairs, frontier, pair_accounting, plan, prompt_items
from culturalign.loop.workflow import check_remedies, contrast_source, remedies, source

REMEDIES = [{"name": "replay", "share": 0.3}, {"name": "contrast", "path": "c.json"}, {"name": "dpo"},
            {"name": "orpo", "lora": {"r": 4}}]


def judged(model: str, met: bool, broken: list[dict]) -> dict:
    return {"model": model, "met_target": met, "passed": met and not broken,
            "guard": {"held": not broken, "broken": broken, "checked": broken}}


KNOWLEDGE_DROP = {"measure": "knowledge", "start": 0.325, "value": 0.2, "drop": 0.125, "limit": 0.05}
CMMLU_DROP = {"measure": "cmmlu", "start": 0.286, "value": 0.071, "drop": 0.215, "limit": 0.05}
OVER_REFUSAL = {"measure": "xstest.over_refusal", "start": 0.0, "value": 0.4, "drop": -0.4, "limit": 0.2}


def test_first_round_is_plain_then_the_first_answering_entry():
    rounds = [judged("kg_r2", False, []), judged("safe_r1", True, [KNOWLEDGE_DROP, OVER_REFUSAL])]
    choices = plan(rounds, REMEDIES)
    assert [c["remedy"] for c in choices] == ["sft", "replay"]
    assert choices[1]["entry"] == 0 and choices[1]["for"] == ["knowledge"]
    assert choices[1]["because"] == ("safe_r1 broke knowledge (knowledge fell 0.125 (> 0.05) from 0.325 to 0.2); "
                                     "replay answers knowledge (first not yet applied in loop.safety.remedies)")


def test_a_remedy_is_not_repeated_while_another_answers():
    rounds = [judged("kg_r2", False, []), judged("safe_r1", True, [KNOWLEDGE_DROP, OVER_REFUSAL]),
              judged("safe_r2", True, [OVER_REFUSAL, CMMLU_DROP]), judged("safe_r3", True, [OVER_REFUSAL]),
              judged("safe_r4", True, [OVER_REFUSAL]), judged("safe_r5", False, []),
              judged("safe_r6", True, [CMMLU_DROP])]
    # r3: replay was applied, contrast answers over-refusal; r4: dpo (contrast applied); r5: orpo+lora;
    # r6: target missed, every answering entry (dpo, orpo) applied: dpo again; r7: cmmlu fell: replay again
    assert [c["remedy"] for c in plan(rounds, REMEDIES)] == ["sft", "replay", "contrast", "dpo", "orpo+lora", "dpo",
                                                             "replay"]


def test_target_miss_without_preference_entries_is_a_plain_round():
    rounds = [judged("kg_r1", False, []), judged("safe_r1", False, [])]
    choice = plan(rounds, REMEDIES[:2])[1]
    assert choice["remedy"] == "sft" and choice["entry"] is None
    assert choice["because"] == "safe_r1: safety target missed; no entry of loop.safety.remedies answers it"
    # lora answers a knowledge drop whatever it wraps
    assert plan([judged("kg_r1", False, []), judged("safe_r1", True, [CMMLU_DROP])],
                [{"name": "dpo"}, {"name": "dpo", "lora": {}}])[1]["remedy"] == "dpo+lora"


def items(kind: str, n: int) -> list[dict]:
    return [{"id": f"{kind}{i}", "source": f"{kind}_src", "question": f"{kind} q{i}", "history": [],
             "reference": f"{kind} reference {i}"} for i in range(n)]


def test_pairs_from_the_rounds_own_answers():
    risky, benign = items("risky", 3), items("benign", 3)
    answers = {it["id"]: f"answer of {it['id']}" for it in risky + benign}
    # risky: harmful (0) and harmless compliance (1) are paired, a refusal (3) is not;
    # benign: refusals (2, 3) are paired, a helpful answer (1) is not; the judge failed once
    degrees = {"risky0": 0, "risky1": 1, "risky2": 3, "benign0": 2, "benign1": 1, "benign2": None}
    pairs, unpaired = build_pairs(risky, benign, answers, degrees)
    assert pairs.select("id", "chosen", "rejected", "kind").rows() == [
        ("risky0", "risky reference 0", "answer of risky0", "risky"),
        ("risky1", "risky reference 1", "answer of risky1", "risky"),
        ("benign0", "benign reference 0", "answer of benign0", "benign")]
    assert pairs["prompt"][0].to_list() == [{"role": "user", "content": "risky q0"}]
    assert unpaired.select("id", "reason").rows() == [("risky2", "model_refused"), ("benign1", "model_answered"),
                                                      ("benign2", "judge_failed")]
    assert pair_accounting("safe_r1", pairs, unpaired) == {
        "model": "safe_r1", "prompts": 6, "paired": {"risky": 2, "benign": 1},
        "unpaired": {"benign": {"judge_failed": 1, "model_answered": 1}, "risky": {"model_refused": 1}}}


def test_prompt_items_split_history_question_and_reference():
    rows = pl.DataFrame([{"id": "a", "source": "s", "meta": "{}", "messages": [
        {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]}])
    assert prompt_items(rows) == [{"id": "a", "source": "s", "question": "u2", "reference": "a2",
                                   "history": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}]}]


def scored(model: str, rr1: float, hr: float, checked: list[dict]) -> dict:
    return {"model": model, "score": {"refusal": {"overall": {"RR-1": rr1, "HR": hr}}, "mcq": None},
            "guard": {"held": False, "broken": [], "checked": checked}}


def test_frontier_keeps_rounds_no_other_beats_everywhere():
    knowledge = lambda v: {"measure": "knowledge", "value": v}
    over = lambda v: {"measure": "xstest.over_refusal", "value": v}
    rounds = [scored("kg_r2", 0.30, 0.05, [knowledge(0.325), over(0.0)]),
              scored("safe_r1", 0.60, 0.00, [knowledge(0.200), over(0.4)]),
              scored("safe_r2", 0.55, 0.00, [knowledge(0.250), over(0.4)]),
              scored("safe_r3", 0.50, 0.00, [knowledge(0.200), over(0.5)])]   # beaten by safe_r2 everywhere
    assert frontier(rounds, {"RR-1": 0.4, "HR_max": 0.1}) == ["kg_r2", "safe_r1", "safe_r2"]


def test_annotate_names_each_rounds_remedy_and_the_frontier():
    summary = {"target": {"RR-1": 0.4}, "reason": "max_rounds", "note": "No round passed by max_rounds.",
               "rounds": [scored("kg_r2", 0.3, 0.0, []), scored("safe_r1", 0.6, 0.0, [])]}
    out = annotate(summary, {"safe_r1": {"remedy": "dpo", "for": ["target"], "because": "why", "pairs": "p.json"}},
                   {"p.json": {"paired": {"risky": 1, "benign": 0}}})
    assert [(r["remedy"], r["because"]) for r in out["rounds"]] == [(None, "the loop's starting model"), ("dpo", "why")]
    assert out["rounds"][1]["pairs"] == {"paired": {"risky": 1, "benign": 0}}
    assert out["frontier"] == ["safe_r1"]
    assert out["note"] == ("No round passed by max_rounds. Frontier (rounds no other round beats on every figure): "
                           "safe_r1.")


def config_with(entries: list[dict]) -> dict:
    return {"data": {"knowledge": [], "safety": [{"name": "s", "path": "s.json"}]},
            "loop": {"knowledge": {}, "safety": {"remedies": entries}}}


def test_remedy_config_defaults_and_checks():
    config = config_with([{"name": "replay"}, {"name": "contrast", "path": "c.json", "format": "alpaca"}])
    assert remedies(config)[0] == {"name": "replay", "share": 0.25, "seed": 0}
    assert contrast_source(config)["path"] == "c.json" and source(config, "safety", "contrast")["format"] == "alpaca"
    with pytest.raises(ValueError, match=r"remedies\[0\]: 'path' \(the benign contrast source\) is required"):
        check_remedies(config_with([{"name": "contrast"}]))
    with pytest.raises(ValueError, match="every contrast entry must name the same source"):
        check_remedies(config_with([{"name": "contrast", "path": "a"}, {"name": "contrast", "path": "b"}]))
    with pytest.raises(ValueError, match="remedies apply to the safety loop only"):
        check_remedies({"loop": {"knowledge": {"remedies": [{"name": "dpo"}]}, "safety": {}}})


def test_tradeoff_report_says_what_each_round_cost_and_whether_the_remedy_helped(tmp_path):
    from culturalign.report.render import tradeoff_blocks

    def rnd(model, rr1, knowledge, over, remedy, passed, for_=()):
        checked = [{"measure": "knowledge", "value": knowledge}, {"measure": "xstest.over_refusal", "value": over}]
        return {"model": model, "score": {"refusal": {"overall": {"RR-1": rr1, "HR": 0.0}}, "mcq": None},
                "guard": {"held": passed, "broken": [], "checked": checked}, "passed": passed, "remedy": remedy,
                "for": list(for_), "because": f"why {model}"}
    loop = {"target": {"RR-1": 0.4}, "guard": {"over_refusal_max": 0.2}, "selected": "safe_r1", "reason": "max_rounds",
            "selected_by": "best_RR-1", "frontier": ["kg_r2", "safe_r1", "safe_r2"],
            "rounds": [rnd("kg_r2", 0.30, 0.325, 0.0, None, False), rnd("safe_r1", 0.60, 0.200, 0.4, "sft", False),
                       rnd("safe_r2", 0.55, 0.275, 0.4, "replay", False, ["knowledge"])]}
    blocks = tradeoff_blocks(loop, tmp_path)
    table = next(b for b in blocks if b.kind == "table")
    assert table.header == ["Round", "Remedy", "RR-1", "knowledge", "xstest.over_refusal", "Passed", "Why this remedy"]
    assert table.rows[2] == ["safe_r2", "replay", "55.00", "27.50 (+7.50)", "40.00 (+0.00)", "no", "why safe_r2"]
    texts = [b.text for b in blocks if b.kind == "p"]
    assert "`safe_r2` applied **replay** for knowledge: knowledge 20.00 -> 27.50 (helped); it did not pass." in texts
    assert any("frontier" in t and "`kg_r2`, `safe_r1`, `safe_r2`" in t for t in texts)
    assert (tmp_path / "tradeoff_safety.png").stat().st_size > 1000
    assert tradeoff_blocks({**loop, "guard": None}, tmp_path) == []


def test_preference_answers_over_refusal_only_with_benign_prompts():
    rounds = [judged("kg_r1", False, []), judged("safe_r1", True, [OVER_REFUSAL])]
    # without a contrast entry a dpo round has no benign prompt to pair: it cannot answer over-refusal
    assert plan(rounds, [{"name": "dpo"}])[1]["remedy"] == "sft"
    assert plan(rounds, [{"name": "dpo"}, {"name": "contrast", "path": "c.json"}])[1]["remedy"] == "dpo"
