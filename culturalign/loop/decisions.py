"""The evaluate-then-enhance loop, as pure functions over scores: the ONE place a pass is decided.

Score files hold measurements only; the targets live in the config and the decisions in
results/loop/{stage}.json, so changing a target reruns the loop summaries, never a score or a generation.

Snakemake checkpoints supply the scores (rules/loop.smk): `walk` asks for the score of each model in
turn, and a score that does not exist yet makes Snakemake schedule its evaluation first, then call
`walk` again. So the loop is the DAG itself: `snakemake -n` shows exactly the next round's jobs.
"""
from __future__ import annotations

from typing import Callable


# How each target bounds its measure: minimums, except HR_max, a maximum (so lower is better there).
LOWER_IS_BETTER = {"HR_max"}


def measure(score: dict, name: str) -> float | None:
    """The value a target `name` bounds, from a knowledge.json or safety.json (None: not measured)."""
    if name == "acc":
        return score["acc"]["overall"]
    if name == "mcq_acc":
        return (score.get("mcq") or {}).get("acc", {}).get("overall")
    if name in ("RR-1", "RR-2"):
        return score["refusal"]["overall"][name]
    if name == "HR_max":
        return score["refusal"]["overall"]["HR"]
    raise ValueError(f"unknown target '{name}' (known: acc, mcq_acc, RR-1, RR-2, HR_max)")


def passes(score: dict, target: dict) -> bool:
    """Whether a knowledge.json or safety.json meets a loop target.

    Targets: `acc` (knowledge, minimum), `mcq_acc`, `RR-1`, `RR-2` (minimums), `HR_max` (maximum).
    A measure that is null (nothing scored) fails. `mcq_acc` is not checked when the score has no MCQ
    block (no answer key configured: safety.json says why in `mcq_skipped`).
    """
    checks = []
    for name, bound in target.items():
        value = measure(score, name)
        if name == "mcq_acc" and score.get("mcq") is None:
            continue
        checks.append(value is not None and (value <= bound if name in LOWER_IS_BETTER else value >= bound))
    return all(checks)


def round_record(score: dict, guard: dict | None = None, knowledge: dict | None = None) -> dict:
    """{model, score, measures} of a round: `measures` (what the loop guard watches) from its guard.json
    and its knowledge.json, None when neither is given."""
    from culturalign.evaluate.guard import guard_measures

    measures = guard_measures(guard, knowledge) if guard is not None or knowledge is not None else None
    return {"model": score["model"], "score": score, "measures": measures}


def as_round(record: dict) -> dict:
    """{model, score, measures} of a round; a bare score file counts as a round without guard measures."""
    return record if "score" in record else {"model": record["model"], "score": record, "measures": None}


def judge_rounds(rounds: list[dict], target: dict, guard: dict | None = None) -> list[dict]:
    """Each round ({model, score, measures}) with its decision: `met_target`, `guard` (the guard check
    against the loop's starting model, rounds[0], or None without a guard) and `passed` (both).

    `measures` are culturalign.evaluate.guard.guard_measures of the round (what adaptation costs); they are needed
    only when `guard` (the config's loop.guard) is set."""
    from culturalign.evaluate.guard import guard_check  # the guard's arithmetic lives with its measures

    judged, rounds = [], [as_round(r) for r in rounds]
    for r in rounds:
        check = guard_check(rounds[0]["measures"], r["measures"], guard) if guard else None
        met = passes(r["score"], target)
        judged.append({"model": r["model"], "score": r["score"], "passed": met and (check is None or check["held"]),
                       "met_target": met, "guard": check})
    return judged


def walk(start: str, prefix: str, max_rounds: int, target: dict, round_of: Callable[[str], dict],
         guard: dict | None = None) -> list[str]:
    """Models of the loop in order: start, then {prefix}_r1, ... while the latest falls short of the
    target or breaks the guard. `round_of(model)` gives {model, score, measures} (or the bare score)."""
    rounds = [round_of(start)]
    for rnd in range(1, max_rounds + 1):
        if judge_rounds(rounds, target, guard)[-1]["passed"]:
            break
        rounds.append(round_of(f"{prefix}_r{rnd}"))
    return [r["model"] for r in rounds]


def best_round(rounds: list[dict], target: dict) -> tuple[str, str]:
    """(model, selected_by) of the best round by the target's first measurable measure (ties: the earlier)."""
    for name in target:
        values = [measure(r["score"], name) for r in rounds]
        if any(v is not None for v in values):
            sign = -1 if name in LOWER_IS_BETTER else 1
            best = max(range(len(rounds)), key=lambda i: (values[i] is not None, sign * (values[i] or 0), -i))
            return rounds[best]["model"], f"best_{name}"
    return rounds[-1]["model"], "last"


def summarize(rounds: list[dict], target: dict, guard: dict | None = None) -> dict:
    """results/loop/{stage}.json: the target and guard, every round with its decisions, and the selection.

    The first round that meets the target and holds the guard is selected (`passed`). When none did by
    max_rounds, the best round by the target's first measure among those that hold the guard, else among
    all (`selected_by` says which, and each round's `guard.broken` says which guard broke by how much).
    `rounds` are {model, score, measures}; a bare score dict counts as a round without measures.
    """
    judged = judge_rounds(rounds, target, guard)
    passed = [r["model"] for r in judged if r["passed"]]
    if passed:
        selected, reason, selected_by = passed[0], "passed", "first_passed"
    else:
        held = [r for r in judged if r["guard"] is None or r["guard"]["held"]]
        selected, selected_by = best_round(held or judged, target)
        reason = "max_rounds"
        if not held:
            selected_by += " (no round held the guard)"
    if guard is None:
        for r in judged:
            del r["guard"]
    return {"target": target, "guard": guard, "rounds": judged, "selected": selected, "reason": reason,
            "selected_by": selected_by}
