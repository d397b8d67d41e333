"""Remedies of the safety loop: what a round applies when the previous one broke the guard or missed its
target, chosen from what the score files show; the preference pairs a DPO/ORPO round learns from; and the
frontier of rounds when none meets both the target and the guard.

Pure functions over the judged rounds of culturalign.loop.decisions.judge_rounds (each with `met_target`
and `guard: {held, broken: [{measure, ...}]}`) and over the config's `loop.safety.remedies`, an ordered
list of entries `{name: replay|contrast|dpo|orpo, lora: {...} or absent, ...settings}`.

What each remedy answers (a broken figure):
- `knowledge`: a guard on an accuracy fell (knowledge ACC, CMMLU, MMLU-Redux): `replay` mixes knowledge rows
  back in; any remedy through LoRA moves fewer weights, so it answers this too;
- `over_refusal`: XSTest's over-refusal passed its ceiling: `contrast` (benign prompts that sound risky, with
  helpful answers), `dpo` / `orpo` (benign pairs: the helpful answer over the model's own refusal; only
  when the list has a contrast entry, whose source gives the benign prompts);
- `target`: the safety target was missed: `dpo` / `orpo` (risky pairs: the reference refusal over the
  model's own non-refusal).
The first entry of the list that answers a broken figure and has not been applied yet is taken (so the list
is the user's order of preference); when every answering entry was applied, the first answering one again;
when none answers, a plain supervised round (`sft`) as without remedies.
"""
from __future__ import annotations

import polars as pl

from culturalign.loop.decisions import LOWER_IS_BETTER, measure

ANSWERS = {"replay": {"knowledge"}, "contrast": {"over_refusal"}, "dpo": {"over_refusal", "target"},
           "orpo": {"over_refusal", "target"}}
PREFERENCE = ("dpo", "orpo")
SFT = "sft"


def label(entry: dict) -> str:
    """The remedy's name in the loop file and the report: `dpo`, `dpo+lora`, ..."""
    return entry["name"] + ("+lora" if entry.get("lora") is not None else "")


def answers(entry: dict, benign: bool = True) -> set[str]:
    """The figures an entry answers; a preference round answers over-refusal only when it has benign
    prompts to pair (a contrast entry's source), else only the target."""
    figures = ANSWERS[entry["name"]] - ({"over_refusal"} if entry["name"] in PREFERENCE and not benign else set())
    return figures | ({"knowledge"} if entry.get("lora") is not None else set())


def broken_figures(judged: dict) -> dict[str, list[str]]:
    """{figure: [what shows it]} of a judged round: `target` when it missed the target, `over_refusal` and
    `knowledge` from its guard's broken measures."""
    figures: dict[str, list[str]] = {}
    if not judged["met_target"]:
        figures["target"] = ["safety target missed"]
    for b in (judged.get("guard") or {}).get("broken") or []:
        figure = "over_refusal" if b["measure"].endswith(".over_refusal") else "knowledge"
        shown = (f"{b['measure']} {b['value']} > ceiling {b['limit']}" if figure == "over_refusal"
                 else f"{b['measure']} fell {b['drop']} (> {b['limit']}) from {b['start']} to {b['value']}")
        figures.setdefault(figure, []).append(shown)
    return figures


def plan(judged: list[dict], remedies: list[dict]) -> list[dict]:
    """The remedy of each trained round 1..len(judged): round k is decided from judged[k-1] (judged[0] is the
    loop's starting model, so round 1 is always a plain supervised round). Each item: {remedy, entry (the
    index in loop.safety.remedies, None for sft), for (the broken figures it answers), because}."""
    choices: list[dict] = []
    benign = any(e["name"] == "contrast" for e in remedies)
    answers_of = lambda e: answers(e, benign)
    for k, previous in enumerate(judged, start=1):
        if k == 1:
            choices.append({"remedy": SFT, "entry": None, "for": [],
                            "because": "first round of the loop: supervised tuning on the safety mix"})
            continue
        figures = broken_figures(previous)
        used = {c["entry"] for c in choices}
        answering = [i for i, e in enumerate(remedies) if answers_of(e) & set(figures)]
        if not answering:
            why = "; ".join(s for shown in figures.values() for s in shown) or "nothing broke"
            choices.append({"remedy": SFT, "entry": None, "for": [],
                            "because": f"{previous['model']}: {why}; no entry of loop.safety.remedies answers it"})
            continue
        fresh = [i for i in answering if i not in used]
        pick = (fresh or answering)[0]
        entry = remedies[pick]
        hit = sorted(answers_of(entry) & set(figures))
        shown = "; ".join(s for f in hit for s in figures[f])
        order = "first not yet applied" if fresh else "all answering entries applied, the first again"
        choices.append({"remedy": label(entry), "entry": pick, "for": hit,
                        "because": f"{previous['model']} broke {', '.join(hit)} ({shown}); {label(entry)} answers "
                                   f"{', '.join(sorted(answers_of(entry)))} ({order} in loop.safety.remedies)"})
    return choices


def frontier(judged: list[dict], target: dict) -> list[str]:
    """Models of the rounds no other round beats on every axis at once: the safety target's measures and
    the guard's measures (each in its own direction). What the report shows when no round passed."""
    def axes(r: dict) -> list[float]:
        values = [measure(r["score"], n) for n in target if measure(r["score"], n) is not None]
        signed = [-v if n in LOWER_IS_BETTER else v for n, v in zip(target, values)]
        for c in (r.get("guard") or {}).get("checked") or []:
            value = c["value"] if c["value"] is not None else float("nan")
            signed.append(-value if c["measure"].endswith(".over_refusal") else value)
        return signed

    points = {r["model"]: axes(r) for r in judged}
    def beaten(a: list[float], b: list[float]) -> bool:   # b at least as good everywhere, better somewhere
        return all(y >= x for x, y in zip(a, b)) and any(y > x for x, y in zip(a, b))
    return [m for m, p in points.items() if not any(beaten(p, q) for n, q in points.items() if n != m)]


# ------------------------------------------------------------------------------ preference pairs

PAIR_COLUMNS = {"id": pl.String, "prompt": pl.List(pl.Struct({"role": pl.String, "content": pl.String})),
                "chosen": pl.String, "rejected": pl.String, "kind": pl.String, "source": pl.String,
                "degree": pl.Int64}


def prompt_items(rows: pl.DataFrame) -> list[dict]:
    """Generation items (id, question, history) of conversations in the common schema: the last user turn is
    the question, the turns before it the history; the last assistant turn is the reference answer."""
    items = []
    for row in rows.iter_rows(named=True):
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        items.append({"id": row["id"], "source": row["source"], "question": messages[last_user]["content"],
                      "history": messages[:last_user], "reference": messages[-1]["content"]})
    return items


def build_pairs(risky: list[dict], benign: list[dict], answers: dict[str, str],
                degrees: dict[str, int | None]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pairs, unpaired) from the model's own answers and their refusal degrees (0-3; None: the judge failed).

    Risky prompt (safety data): paired when the model did not refuse (degree 0 harmful or 1 harmless
    compliance): chosen = the safety data's reference answer, rejected = the model's answer. Benign prompt
    (contrast data): paired when the model refused (degree 2-3): chosen = the helpful reference answer,
    rejected = the model's refusal. Every other prompt is in `unpaired` with its `reason`:
    `model_refused` (risky, already safe), `model_answered` (benign, already helpful), `judge_failed`.
    """
    pairs, unpaired = [], []
    for kind, items in (("risky", risky), ("benign", benign)):
        for it in items:
            degree = degrees[it["id"]]
            refused = degree is not None and degree >= 2
            if degree is None:
                reason = "judge_failed"
            elif kind == "risky" and refused:
                reason = "model_refused"
            elif kind == "benign" and not refused:
                reason = "model_answered"
            else:
                reason = None
            row = {"id": it["id"], "prompt": [*it["history"], {"role": "user", "content": it["question"]}],
                   "kind": kind, "source": it["source"], "degree": degree}
            if reason:
                unpaired.append({**row, "answer": answers[it["id"]], "reason": reason})
            else:
                pairs.append({**row, "chosen": it["reference"], "rejected": answers[it["id"]]})
    unpaired_schema = {k: v for k, v in PAIR_COLUMNS.items() if k not in ("chosen", "rejected")}
    return (pl.DataFrame(pairs, schema=PAIR_COLUMNS),
            pl.DataFrame(unpaired, schema={**unpaired_schema, "answer": pl.String, "reason": pl.String}))


def pair_accounting(model: str, pairs: pl.DataFrame, unpaired: pl.DataFrame) -> dict:
    """{model, prompts, paired: {risky, benign}, unpaired: {kind: {reason: n}}}; prompts = paired + unpaired."""
    out = {"model": model, "prompts": pairs.height + unpaired.height,
           "paired": {k: int((pairs["kind"] == k).sum()) for k in ("risky", "benign")}, "unpaired": {}}
    for row in unpaired.group_by("kind", "reason").len().sort("kind", "reason").iter_rows(named=True):
        out["unpaired"].setdefault(row["kind"], {})[row["reason"]] = row["len"]
    return out


def annotate(summary: dict, rounds: dict[str, dict], pairs: dict[str, dict]) -> dict:
    """results/loop/safety.json with each round's `remedy`, `for` (the figures it was chosen for) and `because`
    (the loop's starting model: None),
    a preference round's `pairs` accounting, and, when no round met both the target and the guard, the
    `frontier` of rounds, named at the end of the decision's `note`. `rounds` is {model: {remedy, for, because, pairs (file)}},
    `pairs` is {pairs file: its accounting}."""
    for r in summary["rounds"]:
        chosen = rounds.get(r["model"])
        r["remedy"], r["for"], r["because"] = ((chosen["remedy"], chosen["for"], chosen["because"]) if chosen
                                               else (None, [], "the loop's starting model"))
        if chosen and chosen.get("pairs"):
            r["pairs"] = pairs[chosen["pairs"]]
    if summary["reason"] != "passed":
        summary["frontier"] = frontier(summary["rounds"], summary["target"])
        # the decision's own note (what was selected and traded) stays first; the frontier is added to it
        summary["note"] += (f" Frontier (rounds no other round beats on every figure): "
                            f"{', '.join(summary['frontier'])}.")
    return summary
