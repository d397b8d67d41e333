"""The evaluate-then-enhance loop, as pure functions over scores.

Snakemake checkpoints supply the scores (rules/loop.smk): `walk` asks for the score of each model in
turn, and a score that does not exist yet makes Snakemake schedule its evaluation first, then call
`walk` again. So the loop is the DAG itself: `snakemake -n` shows exactly the next round's jobs.
"""
from __future__ import annotations

from typing import Callable

from culturalign.metrics import passes


def walk(start: str, prefix: str, max_rounds: int, target: dict, score_of: Callable[[str], dict]) -> list[str]:
    """Models of the loop in order: start, then {prefix}_r1, ... while the latest falls short."""
    models = [start]
    for rnd in range(1, max_rounds + 1):
        if passes(score_of(models[-1]), target):
            break
        models.append(f"{prefix}_r{rnd}")
    return models


def summarize(scores: list[dict], target: dict) -> dict:
    """results/loop/{stage}.json: every round, and the first model that passed (else the last one).

    The pass decision is recomputed from the config's target rather than read from the score file,
    so a changed target is honoured even before the score files are rewritten.
    """
    rounds = [{"model": s["model"], "score": s, "passed": passes(s, target)} for s in scores]
    passed = [r["model"] for r in rounds if r["passed"]]
    selected, reason = (passed[0], "passed") if passed else (rounds[-1]["model"], "max_rounds")
    return {"rounds": rounds, "selected": selected, "reason": reason, "target": target}
