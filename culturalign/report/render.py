"""The final report: base vs KG vs SAFE in the shapes of the paper's Tables 2-4, plus how we got there.

The report is built once as a list of blocks (heading, text, table, image) and rendered twice, to
Markdown and to a self-contained HTML page (images inlined), so the two can never disagree.
"""
from __future__ import annotations

import base64
import csv
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: cluster nodes have no display
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from culturalign.io import read_json  # noqa: E402
from culturalign.loop.decisions import measure  # noqa: E402
from culturalign.util import package_data  # noqa: E402

KNOWLEDGE_DIMS = ("TU", "IE", "TG", "LR", "TP")
SAFETY_AREAS = ("DI", "VV", "CV", "IR", "SR")
COLUMN_NAMES = {"base": "Base", "kg": "KG", "safe": "SAFE"}


@dataclass
class Block:
    kind: str  # "h2" | "p" | "table" | "img"
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def table(header: list[str], rows: list[list]) -> Block:
    return Block("table", header=header, rows=[[str(c) for c in r] for r in rows])


def scores_by_model(paths: list[str]) -> dict[str, dict[str, dict]]:
    """{model: {"knowledge": {...}, "safety": {...}}} from results/scores/{model}/{evalset}.json."""
    out: dict[str, dict[str, dict]] = {}
    for path in paths:
        out.setdefault(Path(path).parent.name, {})[Path(path).stem] = read_json(path)
    return out


def paper_rows(table: str, columns: list[str]) -> list[list[str]]:
    """The paper's published rows of one table, labelled as the paper's (culturalign/report/paper_tables.yaml),
    its values picked by column name ("–" where the paper has no such column)."""
    data = yaml.safe_load(Path(package_data("report/paper_tables.yaml")).read_text(encoding="utf-8"))
    names = data["columns"][table]
    return [[f"paper: {m}", *(f"{data[table][m][names.index(c)]:.2f}" if c in names else "–" for c in columns)]
            for m in data["models"]]


FAILED_MARK = "†"


def marked(value: float | None, failed: bool) -> str:
    """A percentage, marked when its judge failed on more than judge.max_failed of its questions."""
    return pct(value) + (FAILED_MARK if failed and value is not None else "")


def too_many_failures(block: dict | None, max_failed: float) -> bool:
    """Whether a score block's judge failed on more than `max_failed` of its questions."""
    from culturalign.evaluate.guard import failed_share

    if not block or block.get("n_judge_failed") is None:
        return False
    n = block.get("n") or block.get("n_safe", 0) + block.get("n_unsafe", 0)
    return failed_share(block, n) > max_failed


def failure_note(max_failed: float) -> Block:
    return Block("p", f"{FAILED_MARK} the judge failed (no readable reply after the retries) on more than "
                      f"{100 * max_failed:g}% of this figure's questions (judge.max_failed): each failure counts "
                      "against the model (a miss, not refused, harmful, over-refusing), so the figure is a "
                      "bound, not a measurement, and no loop round passes on it.")


def row_labels(compared: dict[str, str], references: list[str] | tuple = ()) -> dict[str, str]:
    """{row label: model}: Base, KG, SAFE (with the model each is), then the reference models."""
    labels = {f"{COLUMN_NAMES[role]} ({model})": model for role, model in compared.items()}
    return labels | {f"reference: {name}": name for name in references}


def comparison_tables(compared: dict[str, str], scores: dict[str, dict[str, dict]],
                      references: list[str] | tuple = (), max_failed: float = 0.02) -> list[Block]:
    """Tables 2-4 of the paper: one row per compared model (Base, KG, SAFE) and per reference model
    (compare:), then the paper's own rows, and under each table the definition its numbers follow. A figure
    whose judge failed on more than `max_failed` of its questions is marked (FAILED_MARK)."""
    labels = row_labels(compared, references)
    know = {lab: scores[m]["knowledge"] for lab, m in labels.items()}
    first = next(iter(know.values()))
    columns = [*KNOWLEDGE_DIMS, "overall"]
    rows = [[r, *(marked(k["acc"].get(d), too_many_failures(k, max_failed)) for d in columns)]
            for r, k in know.items()]
    blocks = [Block("h2", "Knowledge (paper Table 2)"),
              Block("p", f"Accuracy (%) at judge score >= T = {first.get('threshold_T', 90)}, per A-Eval dimension."),
              table(["Model", *KNOWLEDGE_DIMS, "Overall"], rows + paper_rows("table2", columns)),
              Block("p", f"Definition: share of all {first.get('n', '?')} questions scored >= T (empty answers "
                         f"and judge failures count as misses; a fractional judge score is floored); Overall "
                         f"pools every question; judge {first.get('judge', '?')}. Rows 'paper:' are the "
                         f"published numbers.")]
    failed_any = any(too_many_failures(k, max_failed) for k in know.values())
    safety = {lab: scores[m]["safety"] for lab, m in labels.items()}
    some = next(iter(safety.values()))
    blocks.append(Block("h2", "Safety: risk identification (paper Table 3)"))
    columns = [*SAFETY_AREAS, "overall"]
    mcq_rows = [[r, *(marked(s["mcq"]["acc"].get(a), too_many_failures(s["mcq"], max_failed)) for a in columns),
                 pct(s["mcq"].get("pooled")), str(s["mcq"].get("n_unparsed", 0))]
                for r, s in safety.items() if s.get("mcq")]
    if mcq_rows:
        mcq = some["mcq"] or next(s["mcq"] for s in safety.values() if s.get("mcq"))
        failed_any |= any(too_many_failures(s.get("mcq"), max_failed) for s in safety.values())
        blocks += [Block("p", "Multiple-choice accuracy (%) per risk area."),
                   table(["Model", *SAFETY_AREAS, "Overall", "Pooled", "Unparsed"],
                         mcq_rows + [r + ["–", "–"] for r in paper_rows("table3", columns)]),
                   Block("p", f"Definition: Overall is the plain mean of the areas (the paper's); Pooled is "
                              f"correct / all {mcq.get('n', '?')} keyed questions; Unparsed answers name no "
                              f"option (or several) and count as wrong; answer key "
                              f"{mcq.get('answer_key', '?')}; method {mcq.get('method', 'generate')}.")]
    else:
        blocks.append(Block("p", f"Skipped: {some.get('mcq_skipped', 'no answer key configured')}."))
    groups = ["overall", *(a for a in ("DI", "VV") if any(a in s["refusal"] for s in safety.values()))]
    header = ["Model"] + [f"{'Overall' if g == 'overall' else g} {m}" for g in groups for m in ("RR-1", "RR-2", "HR")]
    refusal_rows = [[r, *(marked(s["refusal"].get(g, {}).get(m), too_many_failures(s["refusal"], max_failed))
                          for g in groups for m in ("RR-1", "RR-2", "HR"))] for r, s in safety.items()]
    failed_any |= any(too_many_failures(s["refusal"], max_failed) for s in safety.values())
    refusal = some["refusal"]
    blocks += [Block("h2", "Safety: refusal of risky questions (paper Table 4)"),
               Block("p", "RR-1: refusal rate (degree >= 2); RR-2: responsible refusal (degree 3); HR: harm rate (%)."),
               table(header, refusal_rows + paper_rows("table4", [f"{g} {m}" for g in groups
                                                                  for m in ("RR-1", "RR-2", "HR")])),
               Block("p", f"Definition: shares of all {refusal.get('n', '?')} risky questions (empty answers are "
                          f"judged like any answer; a judge failure counts as not refused and as harmful); judge "
                          f"{some.get('judge', '?')}.")]
    return blocks + ([failure_note(max_failed)] if failed_any else [])


# The loop targets (culturalign.loop.decisions.measure) each stage's rounds are shown by, and their column names.
TARGET_MEASURES = {"acc": "ACC", "mcq_acc": "MCQ acc", "RR-1": "RR-1", "RR-2": "RR-2", "HR_max": "HR"}
STAGE_MEASURES = {"knowledge": ("acc",), "safety": ("mcq_acc", "RR-1", "RR-2", "HR_max")}


# Which judged figure of a round (culturalign.loop.decisions.judge_failures) each target measure is read from.
FIGURE_OF = {"acc": "knowledge", "mcq_acc": "mcq", "RR-1": "refusal", "RR-2": "refusal", "HR_max": "refusal"}


def outcome_blocks(loops: dict[str, dict]) -> list[Block]:
    """What each loop selected and what it traded, as the loop file says it (its `note`), first in the report."""
    notes = [Block("p", f"**{stage}** loop: {loop['note']}") for stage, loop in loops.items() if loop.get("note")]
    return [Block("h2", "Outcome"), *notes] if notes else []


def loop_blocks(loops: dict[str, dict], out_dir: Path) -> list[Block]:
    """Per-round table and curve of each loop, each target drawn as a dashed line; every reason a round did
    not pass, and its figures marked where the judge failed too often."""
    blocks = [Block("h2", "Evaluate-then-enhance rounds")]
    for stage, loop in loops.items():
        metrics = round_metrics(stage, loop)
        names = list(metrics[0][1]) if metrics else []
        guarded = loop.get("guard") is not None
        max_failed = loop.get("max_failed", 0.02)
        rows = []
        for (model, values), r in zip(metrics, loop["rounds"]):
            failed = r.get("judge_failed") or {}
            cells = [marked(v, (failed.get(FIGURE_OF[n]) or 0) > max_failed)
                     for n, v in zip(STAGE_MEASURES[stage], values.values())]
            rows.append([model, *cells, *([guard_text(r.get("guard"))] if guarded else []),
                         "yes" if r["passed"] else "no", "; ".join(r.get("why") or [])])
        target = loop.get("target", {})
        blocks += [Block("p", f"**{stage}** loop: selected `{loop['selected']}` ({loop['reason']}"
                              f"{', by ' + loop['selected_by'] if loop.get('selected_by') else ''}); "
                              f"target {json.dumps(target, ensure_ascii=False)}"
                              f"{'; guard ' + json.dumps(loop['guard']) if guarded else ''}; "
                              f"judge.max_failed {max_failed}."),
                   table(["Model", *names, *(["Guard"] if guarded else []), "Passed", "Why not"], rows)]
        if any(FAILED_MARK in c for row in rows for c in row):
            blocks.append(failure_note(max_failed))
        png = out_dir / f"rounds_{stage}.png"
        plot_lines(png, f"{stage} loop", [m for m, _ in metrics],
                   {n: [None if v[n] is None else 100 * v[n] for _, v in metrics] for n in names}, ylabel="%",
                   targets={TARGET_MEASURES[k]: 100 * v for k, v in target.items() if k in TARGET_MEASURES})
        blocks.append(Block("img", str(png)))
    return blocks


def guard_text(check: dict | None) -> str:
    """'held', or which guard broke and by how much ('cmmlu -5.00 (max 2.00)', 'xstest.over_refusal 30.00 > 10.00',
    'knowledge: judge failed on 100.00%')."""
    if not check or check["held"]:
        return "held"
    parts = [f"{b['measure']}: judge failed on {pct(b['judge_failed'])}%" if b.get("judge_failed") is not None
             else f"{b['measure']} {pct(b['value'])} > {pct(b['limit'])}" if b["measure"].endswith("over_refusal")
             else f"{b['measure']} -{100 * b['drop']:.2f} (max {100 * b['limit']:.2f})" for b in check["broken"]]
    return "broke: " + "; ".join(parts)


def round_metrics(stage: str, loop: dict) -> list[tuple[str, dict[str, float | None]]]:
    """(model, {column: value}) per round, the values as the loop reads them."""
    return [(r["model"], {TARGET_MEASURES[n]: measure(r["score"], n) for n in STAGE_MEASURES[stage]})
            for r in loop["rounds"]]


def plot_lines(png: Path, title: str, xlabels: list[str], series: dict[str, list[float | None]], ylabel: str,
               targets: dict[str, float] | None = None) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for name, ys in series.items():
        points = [(x, y) for x, y in enumerate(ys) if y is not None]
        if not points:
            continue
        line, = ax.plot(*zip(*points), marker="o", label=name)
        if name in (targets or {}):
            ax.axhline(targets[name], color=line.get_color(), linestyle="--", linewidth=1, label=f"{name} target")
    ax.set_xticks(range(len(xlabels)), xlabels)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def tradeoff_blocks(loop: dict | None, out_dir: Path) -> list[Block]:
    """The safety loop's trade-off: one point per round (the target's first measure against each guard
    figure, labelled with the round's remedy), a table of what each round cost and why its remedy was
    chosen, and per remedy round whether the figures it was chosen for improved on the round before."""
    if not loop or loop.get("guard") is None or not loop["rounds"]:
        return []
    rounds, first = loop["rounds"], next(iter(loop["target"]))
    x_name = TARGET_MEASURES.get(first, first)
    figures = [c["measure"] for c in rounds[0]["guard"]["checked"]]
    value = lambda r, m: next((c["value"] for c in r["guard"]["checked"] if c["measure"] == m), None)
    tag = lambda r: f"{r['model']} ({r.get('remedy') or 'start'})"
    png = out_dir / "tradeoff_safety.png"
    fig, axes = plt.subplots(1, len(figures), figsize=(4.2 * len(figures), 3.6), dpi=100, squeeze=False)
    for ax, figure in zip(axes[0], figures):
        points = [(measure(r["score"], first), value(r, figure), tag(r)) for r in rounds]
        shown = [(x, y, t) for x, y, t in points if x is not None and y is not None]
        if shown:
            ax.plot([100 * x for x, _, _ in shown], [100 * y for _, y, _ in shown], color="0.7", zorder=1)
        for i, (x, y, t) in enumerate(shown):   # labels stepped up and down: rounds often share a point
            ax.scatter(100 * x, 100 * y, zorder=2)
            ax.annotate(t, (100 * x, 100 * y), fontsize=7, xytext=(3, 3 - 9 * (i % 3)), textcoords="offset points")
        ax.set(xlabel=f"{x_name} (%)", ylabel=f"{figure} (%)", title=figure)
        ax.grid(alpha=0.3)
    fig.suptitle("safety loop: target vs what it cost (rounds in order)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    rows = []
    for i, r in enumerate(rounds):
        costs = [f"{pct(value(r, m))} ({signed(value(r, m), value(rounds[i - 1], m)) if i else 'start'})"
                 for m in figures]
        rows.append([r["model"], r.get("remedy") or "start", pct(measure(r["score"], first)), *costs,
                     "yes" if r["passed"] else "no", r.get("because", "")])
    verdicts = []
    lower_better = lambda m: m.endswith("over_refusal")
    for before, r in zip(rounds, rounds[1:]):
        if r.get("remedy") in (None, "sft"):
            continue
        watched = [m for m in figures if ("over_refusal" if lower_better(m) else "knowledge") in r.get("for", [])]
        watched += [first] if "target" in r.get("for", []) else []
        parts = []
        for m in watched:
            old, new = ((measure(before["score"], m), measure(r["score"], m)) if m == first
                        else (value(before, m), value(r, m)))
            if old is None or new is None:
                continue
            better = new < old if (lower_better(m) or m in ("HR_max",)) else new > old
            parts.append(f"{m} {pct(old)} -> {pct(new)} ({'helped' if better else 'did not help' if new != old else 'no change'})")
        verdicts.append(f"`{r['model']}` applied **{r['remedy']}** for {', '.join(r.get('for', [])) or 'nothing'}: "
                        f"{'; '.join(parts) or 'no figure to compare'}; it {'passed' if r['passed'] else 'did not pass'}.")
    blocks = [Block("h2", "Safety loop trade-off and remedies"),
              Block("p", "Each round's safety target measure against what the loop guards (values in %, change "
                         "from the round before in brackets); a remedy round is chosen from the figure the round "
                         "before it broke (loop.safety.remedies)."),
              table(["Round", "Remedy", x_name, *figures, "Passed", "Why this remedy"], rows),
              Block("img", str(png))]
    blocks += [Block("p", v) for v in verdicts]
    if loop.get("frontier"):
        blocks.append(Block("p", f"No round met both the target and the guard; the frontier (no round beats these on "
                                 f"every figure): {', '.join(f'`{m}`' for m in loop['frontier'])}. "
                                 f"Selected `{loop['selected']}` ({loop['selected_by']})."))
    return blocks


def data_blocks(stats_paths: list[str]) -> list[Block]:
    """One row per source; the drop reasons go in one column, so the table fits the page however many."""
    stats = [read_json(p) | {"stage": Path(p).parts[-3]} for p in stats_paths]
    rows = [[s["stage"], s["source"], s["rows_in"], s["rows_kept"], s["rows_rejected"], s.get("refined", 0),
             ", ".join(f"{r} {n}" for r, n in sorted(s["dropped"].items(), key=lambda kv: -kv[1]))]
            for s in stats]
    return [Block("h2", "Data stage"),
            Block("p", "Rows per source; every dropped row is kept in its rejected.parquet with the reason."),
            table(["Stage", "Source", "In", "Kept", "Rejected", "Refined", "Dropped (reason rows)"], rows)]


GUARD_ROWS = (("acc", "accuracy"), ("over_refusal", "over-refusal (safe prompts refused)"),
              ("refusal_unsafe", "refusal of unsafe prompts"))


def guard_blocks(compared: dict[str, str], guards: dict[str, dict], scores: dict[str, dict[str, dict]],
                 out_dir: Path, references: list[str] | tuple = (), max_failed: float = 0.02) -> list[Block]:
    """What adaptation cost: every guard set (and A-Eval knowledge) for Base, KG, SAFE and the reference
    models, with the change each stage made, and a bar chart of the same numbers (judged figures marked
    where the judge failed on more than `max_failed` of their questions)."""
    if not guards:
        return []
    labels = {lab: m for lab, m in row_labels(compared, references).items() if m in guards}
    base, kg, safe = compared["base"], compared["kg"], compared["safe"]
    rows, series = [], {}
    measures = [("knowledge", "acc", "A-Eval-style knowledge (ACC)")]
    for name, entry in next(iter(guards.values()))["sets"].items():
        measures += [(name, key, f"{name} {text}") for key, text in GUARD_ROWS if key in entry]

    def value(model: str, name: str, key: str) -> float | None:
        if name == "knowledge":
            return (scores.get(model, {}).get("knowledge") or {}).get("acc", {}).get("overall")
        return guards.get(model, {}).get("sets", {}).get(name, {}).get(key)

    def failed(model: str, name: str) -> bool:
        entry = scores.get(model, {}).get("knowledge") if name == "knowledge" else \
            guards.get(model, {}).get("sets", {}).get(name)
        return too_many_failures(entry, max_failed)

    for name, key, text in measures:
        values = {lab: value(m, name, key) for lab, m in labels.items()}
        delta = [value(kg, name, key), value(base, name, key), value(safe, name, key)]
        rows.append([text, *(marked(v, failed(labels[lab], name)) for lab, v in values.items()),
                     signed(delta[0], delta[1]), signed(delta[2], delta[0])])
        series[text] = [None if v is None else 100 * v for v in values.values()]
    png = out_dir / "adaptation_cost.png"
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    width = 0.8 / max(1, len(labels))
    for i, lab in enumerate(labels):
        ys = [series[text][i] or 0.0 for _, _, text in measures]
        ax.bar([x + i * width for x in range(len(measures))], ys, width, label=lab)
    ax.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(measures))],
                  [text for _, _, text in measures], rotation=20, ha="right", fontsize=7)
    ax.set(title="What adaptation cost", ylabel="%")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return [Block("h2", "What adaptation cost"),
            Block("p", "General knowledge, English and over-refusal beside the paper's tables (%); the last two "
                       "columns are the change knowledge tuning made (KG - Base) and safety tuning made "
                       "(SAFE - KG), in points. Multiple choice is scored by the log-likelihood of the option "
                       "letter unless a set says method generate; over-refusal is the share of XSTest's safe "
                       "prompts the refusal judge calls refused."),
            table(["Measure", *labels, "KG - Base", "SAFE - KG"], rows),
            *([failure_note(max_failed)] if any(FAILED_MARK in c for r in rows for c in r) else []),
            Block("img", str(png))]


def signed(after: float | None, before: float | None) -> str:
    return "–" if after is None or before is None else f"{100 * (after - before):+.2f}"


def drop_blocks(rejected_paths: list[str], out_dir: Path, examples: int = 3) -> list[Block]:
    """Per source, a bar chart of its drop reasons and `examples` rows per reason, so a reader can judge
    each filter's precision at a glance."""
    from culturalign.data.review import drop_summary   # polars, only for this section

    import polars as pl

    summaries = {f"{Path(p).parts[-3]}/{Path(p).parts[-2]}": drop_summary(pl.read_parquet(p), examples)
                 for p in rejected_paths}
    summaries = {src: s for src, s in summaries.items() if s}
    if not summaries:
        return []
    png = out_dir / "drop_reasons.png"
    fig, axes = plt.subplots(len(summaries), 1, figsize=(6, 1.2 + 0.9 * len(summaries)), dpi=100, squeeze=False)
    for ax, (src, summary) in zip(axes[:, 0], summaries.items()):
        reasons = list(summary)[::-1]
        ax.barh(reasons, [summary[r]["count"] for r in reasons])
        ax.set_title(src, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    rows = [[src, reason, ex["id"], one_line(ex["prompt"]), one_line(ex["answer"]), ex.get("rule", "")]
            for src, summary in summaries.items() for reason, entry in summary.items() for ex in entry["examples"]]
    return [Block("h2", "Dropped rows by reason"), Block("img", str(png)),
            Block("p", f"Up to {examples} examples per reason (stable across reruns); every dropped row is in "
                       "the source's rejected.parquet."),
            table(["Source", "Reason", "Id", "Prompt", "Answer", "Rule"], rows)]


def one_line(text: str | None, limit: int = 80) -> str:
    text = " ".join((text or "").split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def training_blocks(model_dirs: list[str], out_dir: Path) -> list[Block]:
    """Loss of every trained round on one axis: within a loop, round r+1 continues where round r ended."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for d in model_dirs:
        log = Path(d) / "trainer_log.jsonl"
        if log.exists():
            entries = read_json(log)
            curves[Path(d).name] = [(e.get("step", i + 1), e["loss"]) for i, e in enumerate(entries)
                                    if e.get("loss") is not None]
    if not curves:
        return [Block("h2", "Training"), Block("p", "No model was trained: the base model met the targets.")]
    png = out_dir / "training_loss.png"
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    offset = 0
    for name in sorted(curves, key=lambda m: (not m.startswith("kg"), int(m.rsplit("_r", 1)[-1] or 0))):
        points = curves[name]
        if points:
            ax.plot([offset + s for s, _ in points], [loss for _, loss in points], label=name)
            offset += points[-1][0]
            ax.axvline(offset, color="grey", linestyle=":", linewidth=0.8)
    ax.set(title="Training loss across rounds", xlabel="optimizer step (cumulative over rounds)", ylabel="loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    rows = [[name, len(v), f"{v[0][1]:.4f}", f"{v[-1][1]:.4f}"] for name, v in curves.items() if v]
    return [Block("h2", "Training"), table(["Model", "Logged steps", "First loss", "Last loss"], rows),
            Block("img", str(png))]


def judge_blocks(usage: dict[str, str]) -> list[Block]:
    """LLM requests, cache hits and cost, from the per-job usage files the LLM client writes ({job: path};
    a job that sent no request wrote none)."""
    rows = []
    for job, path in sorted(usage.items()):
        if not os.path.exists(path):
            continue
        u = read_json(path)
        rows.append([job, u.get("requests", 0), u.get("cache_hits", 0),
                     u.get("failed", 0), u.get("prompt_tokens", 0) + u.get("completion_tokens", 0),
                     f"{u.get('cost_usd', 0.0):.4f}"])
    if not rows:
        return [Block("h2", "Judges and LLM calls"),
                Block("p", "No LLM requests: every judge in this run is deterministic (reference / keyword).")]
    return [Block("h2", "Judges and LLM calls"),
            table(["Job", "Requests", "Cache hits", "Failed", "Tokens", "Cost (USD)"], rows)]


def runtime_blocks(timings: dict[str, str]) -> list[Block]:
    """Wall time and peak memory per job, from Snakemake's `benchmark:` files ({job: path})."""
    rows = []
    for job, path in sorted(timings.items()):
        with open(path) as f:
            rec = next(csv.DictReader(f, delimiter="\t"), None)
        if rec:
            rows.append([job, f"{float(rec['s']):.1f}", rec.get("max_rss", "NA")])
    return [Block("h2", "Wall time and peak memory per job"),
            table(["Job", "Seconds", "Peak RSS (MB)"], rows)] if rows else []


def render_md(blocks: list[Block], md_path: Path) -> str:
    out = ["# culturalign report", ""]
    for b in blocks:
        if b.kind == "h2":
            out += [f"## {b.text}", ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "table":
            out += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            out += ["| " + " | ".join(r) + " |" for r in b.rows] + [""]
        elif b.kind == "img":
            out += [f"![{Path(b.text).stem}]({os.path.relpath(b.text, md_path.parent)})", ""]
    return "\n".join(out)


def render_html(blocks: list[Block]) -> str:
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>culturalign report</title>",
           "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
           "text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>",
           "<h1>culturalign report</h1>"]
    for b in blocks:
        if b.kind == "h2":
            out.append(f"<h2>{html.escape(b.text)}</h2>")
        elif b.kind == "p":
            out.append(f"<p>{html.escape(b.text).replace('**', '')}</p>")
        elif b.kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b.rows]
            out.append("</table>")
        elif b.kind == "img":
            data = base64.b64encode(Path(b.text).read_bytes()).decode()
            out.append(f"<img alt='{html.escape(Path(b.text).stem)}' src='data:image/png;base64,{data}'>")
    return "\n".join(out + ["</body></html>"])


def build_report(*, compared: dict[str, str], loop_paths: list[str], score_paths: list[str],
                 stats_paths: list[str], model_dirs: list[str], md_path: str, html_path: str,
                 timings: dict[str, str] | None = None, usage: dict[str, str] | None = None,
                 guard_paths: list[str] = (), rejected_paths: list[str] = (), references: list[str] = ()) -> None:
    """report.md and report.html from the files given (the report reads nothing else): loop summaries,
    score files (guard.json files apart), data stats and rejected rows, trained model directories, and by
    job name the Snakemake `benchmark:` files (`timings`) and the LLM usage files (`usage`).
    `references` are the compare: models, shown as labelled extra rows."""
    md, out_dir = Path(md_path), Path(md_path).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    loops = {Path(p).stem: read_json(p) for p in loop_paths}
    scores = scores_by_model(score_paths)
    max_failed = min((loop.get("max_failed", 0.02) for loop in loops.values()), default=0.02)
    blocks = outcome_blocks(loops)
    blocks += comparison_tables(compared, scores, references, max_failed)
    blocks += guard_blocks(compared, {Path(p).parent.name: read_json(p) for p in guard_paths}, scores, out_dir,
                           references, max_failed)
    blocks += loop_blocks(loops, out_dir)
    blocks += tradeoff_blocks(loops.get("safety"), out_dir)
    blocks += data_blocks(stats_paths)
    blocks += drop_blocks(list(rejected_paths), out_dir)
    blocks += training_blocks(model_dirs, out_dir)
    blocks += judge_blocks(usage or {})
    blocks += runtime_blocks(timings or {})
    md.write_text(render_md(blocks, md), encoding="utf-8")
    Path(html_path).write_text(render_html(blocks), encoding="utf-8")
