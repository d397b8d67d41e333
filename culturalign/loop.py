"""The evaluate-then-enhance loop, as pure functions over scores: the ONE place a pass is decided.

Score files hold measurements only; the targets live in the config and the decisions in
results/loop/{stage}.json, so changing a target reruns the loop summaries, never a score or a generation.

Snakemake checkpoints supply the scores (rules/loop.smk): `walk` asks for the score of each model in
turn, and a score that does not exist yet makes Snakemake schedule its evaluation first, then call
`walk` again. So the loop is the DAG itself: `snakemake -n` shows exactly the next round's jobs.
"""
from __future__ import annotations

from typing import Callable


def passes(score: dict, target: dict) -> bool:
    """Whether a knowledge.json or safety.json meets a loop target.

    Targets: `acc` (knowledge, minimum), `mcq_acc`, `RR-1`, `RR-2` (minimums), `HR_max` (maximum).
    A measure that is null (nothing scored) fails. `mcq_acc` is not checked when the score has no MCQ
    block (no answer key configured: safety.json says why in `mcq_skipped`).
    """
    checks = []
    for name, bound in target.items():
        if name == "acc":
            value, ok = score["acc"]["overall"], lambda v, b: v >= b
        elif name == "mcq_acc":
            if score.get("mcq") is None:
                continue
            value, ok = score["mcq"]["acc"]["overall"], lambda v, b: v >= b
        elif name in ("RR-1", "RR-2"):
            value, ok = score["refusal"]["overall"][name], lambda v, b: v >= b
        elif name == "HR_max":
            value, ok = score["refusal"]["overall"]["HR"], lambda v, b: v <= b
        else:
            raise ValueError(f"unknown target '{name}' (known: acc, mcq_acc, RR-1, RR-2, HR_max)")
        checks.append(value is not None and ok(value, bound))
    return all(checks)


def walk(start: str, prefix: str, max_rounds: int, target: dict, score_of: Callable[[str], dict]) -> list[str]:
    """Models of the loop in order: start, then {prefix}_r1, ... while the latest falls short."""
    models = [start]
    for rnd in range(1, max_rounds + 1):
        if passes(score_of(models[-1]), target):
            break
        models.append(f"{prefix}_r{rnd}")
    return models


def summarize(scores: list[dict], target: dict) -> dict:
    """results/loop/{stage}.json: the target, every round with its pass decision, and the selection:
    the first model that passed (else the last one, reason max_rounds)."""
    rounds = [{"model": s["model"], "score": s, "passed": passes(s, target)} for s in scores]
    passed = [r["model"] for r in rounds if r["passed"]]
    selected, reason = (passed[0], "passed") if passed else (rounds[-1]["model"], "max_rounds")
    return {"target": target, "rounds": rounds, "selected": selected, "reason": reason, "selected_by": "first_passed"}

