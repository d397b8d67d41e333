"""The loop's decisions (culturalign.loop.decisions) on hand-made score files: a judge failure never helps a round
pass, a round whose judge failed on more than judge.max_failed does not pass, and the loop file says why in
plain words. Every expected value is written by hand from the numbers below."""
from __future__ import annotations

from culturalign.evaluate.guard import guard_measures
from culturalign.loop import decisions as loop


def knowledge(model: str, acc: float, failed: int = 0, n: int = 100) -> dict:
    return {"model": model, "n": n, "n_judge_failed": failed, "acc": {"overall": acc}}


def safety(model: str, rr1: float, hr: float, failed: int = 0, n: int = 50) -> dict:
    return {"model": model, "mcq": None,
            "refusal": {"n": n, "n_judge_failed": failed, "overall": {"RR-1": rr1, "RR-2": 0.0, "HR": hr}}}


def test_a_round_whose_judge_failed_too_often_does_not_pass():
    # 3 failures of 100 = 3 % > 2 %: the round meets its target, and still does not pass
    s = loop.summarize([knowledge("base", 0.1), knowledge("kg_r1", 0.5, failed=3)], {"acc": 0.4})
    r = s["rounds"][1]
    assert (r["met_target"], r["passed"], r["judge_failed"]) == (True, False, {"knowledge": 0.03})
    assert r["why"] == ["judgements failed: the judge could not label 3.00% of the knowledge questions "
                        "(judge.max_failed 2.00%)"]
    assert (s["selected"], s["reason"], s["max_failed"]) == ("kg_r1", "max_rounds", 0.02)
    # 2 of 100 is at the limit: passes; a looser limit lets 3 of 100 pass
    assert loop.summarize([knowledge("kg_r1", 0.5, failed=2)], {"acc": 0.4})["rounds"][0]["passed"]
    assert loop.summarize([knowledge("kg_r1", 0.5, failed=3)], {"acc": 0.4}, max_failed=0.05)["rounds"][0]["passed"]


def test_walk_trains_again_after_a_round_the_judge_failed_on():
    rounds = {"base": knowledge("base", 0.1), "kg_r1": knowledge("kg_r1", 0.5, failed=10),
              "kg_r2": knowledge("kg_r2", 0.45)}
    assert loop.walk("base", "kg", 3, {"acc": 0.4}, rounds.get) == ["base", "kg_r1", "kg_r2"]
    assert loop.walk("base", "kg", 3, {"acc": 0.4}, rounds.get, max_failed=0.2) == ["base", "kg_r1"]


def test_safety_round_reasons_name_every_miss():
    s = loop.summarize([safety("kg_r2", 0.0, 0.0), safety("safe_r1", 0.3, 0.2, failed=5)],
                       {"RR-1": 0.4, "HR_max": 0.1})
    assert s["rounds"][0]["why"] == ["target not met: RR-1 0.00% < 40.00%"]
    assert s["rounds"][1]["why"] == ["target not met: RR-1 30.00% < 40.00%", "target not met: HR 20.00% > 10.00%",
                                     "judgements failed: the judge could not label 10.00% of the refusal questions "
                                     "(judge.max_failed 2.00%)"]


def test_guard_break_is_traded_in_plain_words():
    """The demo's shape: the safety round meets its target but costs CMMLU, knowledge and over-refusal."""
    guard = {"max_drop": {"cmmlu": 0.08, "knowledge": 0.05}, "over_refusal_max": 0.20}

    def rnd(score, cmmlu, know, over):
        g = {"sets": {"cmmlu": {"n": 14, "acc": cmmlu},
                      "xstest": {"n_safe": 10, "n_unsafe": 6, "over_refusal": over, "n_judge_failed": 0}}}
        return {"model": score["model"], "score": score, "measures": guard_measures(g, knowledge("k", know, n=40))}

    rounds = [rnd(safety("kg_r2", 0.0, 0.0), 0.2857, 0.325, 0.0), rnd(safety("safe_r1", 0.85, 0.0), 0.0714, 0.2, 0.4)]
    s = loop.summarize(rounds, {"RR-1": 0.4, "HR_max": 0.1}, guard)
    r = s["rounds"][1]
    assert (r["met_target"], r["guard"]["held"], r["passed"]) == (True, False, False)
    assert r["why"] == ["guard broke: cmmlu dropped 21.43 points (28.57% -> 7.14%; max 8.00)",
                        "guard broke: knowledge dropped 12.50 points (32.50% -> 20.00%; max 5.00)",
                        "guard broke: xstest.over_refusal 40.00% > 20.00%"]
    # the starting model holds the guard (against itself) but misses the target: it is the pick
    assert (s["selected"], s["reason"], s["selected_by"]) == ("kg_r2", "max_rounds", "best_RR-1")
    assert s["note"] == (
        "No round passed by max_rounds; selected kg_r2. No trained round held the guard. Traded away: safe_r1 met "
        "the target but was rejected (guard broke: cmmlu dropped 21.43 points (28.57% -> 7.14%; max 8.00); guard "
        "broke: knowledge dropped 12.50 points (32.50% -> 20.00%; max 5.00); guard broke: xstest.over_refusal "
        "40.00% > 20.00%). kg_r2 itself: target not met: RR-1 0.00% < 40.00%.")
    # a later round that meets the target within the guard passes; the note still names what was rejected
    s = loop.summarize([*rounds, rnd(safety("safe_r2", 0.5, 0.0), 0.2143, 0.3, 0.1)], {"RR-1": 0.4, "HR_max": 0.1},
                       guard)
    assert (s["selected"], s["reason"]) == ("safe_r2", "passed")
    assert s["note"].startswith("safe_r2 passed: it met the target, held the guard and its judgements held. "
                                "Traded away: safe_r1 met the target but was rejected (guard broke: cmmlu dropped")


def test_every_judgement_failing_passes_nothing_and_holds_no_guard():
    guard = {"max_drop": {"cmmlu": 0.08, "knowledge": 0.05}, "over_refusal_max": 0.20}

    def rnd(model):
        # every judge call failed: knowledge ACC 0 with 40 of 40 failures, XSTest 16 of 16 failures, which
        # count as refusals of the 10 safe prompts (over-refusal 1.0); CMMLU is log-likelihood, no judge
        g = {"sets": {"cmmlu": {"n": 14, "acc": 0.2857},
                      "xstest": {"n_safe": 10, "n_unsafe": 6, "over_refusal": 1.0, "n_judge_failed": 16}}}
        know = knowledge(model, 0.0, failed=40, n=40)
        return {"model": model, "score": know, "measures": guard_measures(g, know)}

    s = loop.summarize([rnd("base"), rnd("kg_r1")], {"acc": 0.3}, guard)
    assert [r["passed"] for r in s["rounds"]] == [False, False]
    assert [r["guard"]["held"] for r in s["rounds"]] == [False, False]
    assert [b["measure"] for b in s["rounds"][1]["guard"]["broken"]] == ["knowledge", "xstest.over_refusal"]
    assert s["rounds"][1]["guard"]["broken"][0] == {"measure": "knowledge", "start": 0.0, "value": 0.0, "drop": 0.0,
                                                    "limit": 0.05, "judge_failed": 1.0}
    assert (s["selected"], s["selected_by"]) == ("base", "best_acc (no round held the guard)")
    assert "The judgements failed" in s["note"] and "No round held the guard, the starting model included." in s["note"]
