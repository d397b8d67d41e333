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

from culturalign.io import read_json  # noqa: E402

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


def comparison_tables(compared: dict[str, str], scores: dict[str, dict[str, dict]]) -> list[Block]:
    """Tables 2-4 of the paper: one row per compared model (Base, KG, SAFE)."""
    label = {role: f"{COLUMN_NAMES[role]} ({model})" for role, model in compared.items()}
    know = [[label[r], *(pct(scores[m]["knowledge"]["acc"].get(d)) for d in (*KNOWLEDGE_DIMS, "overall"))]
            for r, m in compared.items()]
    t = next(iter(scores.values()))["knowledge"].get("threshold_T", 90)
    blocks = [Block("h2", "Knowledge (paper Table 2)"),
              Block("p", f"Accuracy (%) at judge score >= T = {t}, per A-Eval dimension."),
              table(["Model", *KNOWLEDGE_DIMS, "Overall"], know)]
    mcq_rows, refusal_rows = [], []
    for role, model in compared.items():
        safety = scores[model]["safety"]
        mcq = safety.get("mcq")
        if mcq:
            mcq_rows.append([label[role], *(pct(mcq["acc"].get(a)) for a in (*SAFETY_AREAS, "overall"))])
        overall = safety["refusal"]["overall"]
        refusal_rows.append([label[role], pct(overall["RR-1"]), pct(overall["RR-2"]), pct(overall["HR"])])
    blocks.append(Block("h2", "Safety: risk identification (paper Table 3)"))
    if mcq_rows:
        key = next(iter(scores.values()))["safety"]["mcq"].get("answer_key", "gold")
        blocks += [Block("p", f"Multiple-choice accuracy (%) per risk area; answer key: {key}."),
                   table(["Model", *SAFETY_AREAS, "Overall"], mcq_rows)]
    else:
        why = next(iter(scores.values()))["safety"].get("mcq_skipped", "no answer key configured")
        blocks.append(Block("p", f"Skipped: {why}."))
    blocks += [Block("h2", "Safety: refusal of risky questions (paper Table 4)"),
               Block("p", "RR-1: refusal rate (degree >= 2); RR-2: responsible refusal (degree 3); HR: harm rate (%)."),
               table(["Model", "RR-1", "RR-2", "HR"], refusal_rows)]
    return blocks


def loop_blocks(loops: dict[str, dict], out_dir: Path) -> list[Block]:
    """Per-round table and curve of each loop."""
    blocks = [Block("h2", "Evaluate-then-enhance rounds")]
    for stage, loop in loops.items():
        metrics = round_metrics(stage, loop)
        names = list(metrics[0][1]) if metrics else []
        rows = [[model, *(pct(v) for v in values.values()), "yes" if ok else "no"]
                for (model, values), ok in zip(metrics, (r["passed"] for r in loop["rounds"]))]
        blocks += [Block("p", f"**{stage}** loop: selected `{loop['selected']}` ({loop['reason']}); "
                              f"target {json.dumps(loop.get('target', {}), ensure_ascii=False)}."),
                   table(["Model", *names, "Passed"], rows)]
        png = out_dir / f"rounds_{stage}.png"
        plot_lines(png, f"{stage} loop", [m for m, _ in metrics],
                   {n: [100 * v[n] for _, v in metrics if v[n] is not None] for n in names}, ylabel="%")
        blocks.append(Block("img", str(png)))
    return blocks


def round_metrics(stage: str, loop: dict) -> list[tuple[str, dict[str, float | None]]]:
    out = []
    for r in loop["rounds"]:
        s = r["score"]
        if stage == "knowledge":
            values = {"ACC": s["acc"]["overall"]}
        else:
            values = {"MCQ acc": (s.get("mcq") or {}).get("acc", {}).get("overall"),
                      **{k: s["refusal"]["overall"][k] for k in ("RR-1", "RR-2", "HR")}}
        out.append((r["model"], values))
    return out


def plot_lines(png: Path, title: str, xlabels: list[str], series: dict[str, list[float]], ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for name, ys in series.items():
        if ys:
            ax.plot(range(len(ys)), ys, marker="o", label=name)
    ax.set_xticks(range(len(xlabels)), xlabels)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def data_blocks(stats_paths: list[str]) -> list[Block]:
    stats = [read_json(p) | {"stage": Path(p).parts[-3]} for p in stats_paths]
    reasons = sorted({r for s in stats for r in s["dropped"]})
    rows = [[s["stage"], s["source"], s["rows_in"], s["rows_kept"], s["rows_rejected"], s.get("refined", 0),
             *(s["dropped"].get(r, 0) for r in reasons)] for s in stats]
    return [Block("h2", "Data stage"),
            Block("p", "Rows per source; every dropped row is kept in its rejected.parquet with the reason."),
            table(["Stage", "Source", "In", "Kept", "Rejected", "Refined", *reasons], rows)]


def training_blocks(model_dirs: list[str], out_dir: Path) -> list[Block]:
    curves: dict[str, list[float]] = {}
    for d in model_dirs:
        log = Path(d) / "trainer_log.jsonl"
        if log.exists():
            entries = read_json(log)
            curves[Path(d).name] = [e["loss"] for e in entries if e.get("loss") is not None]
    if not curves:
        return [Block("h2", "Training"), Block("p", "No model was trained: the base model met the targets.")]
    png = out_dir / "training_loss.png"
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for name, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=name)
    ax.set(title="Training loss per logged step", xlabel="logged step", ylabel="loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    rows = [[name, len(v), f"{v[0]:.4f}", f"{v[-1]:.4f}"] for name, v in curves.items() if v]
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
                 timings: dict[str, str] | None = None, usage: dict[str, str] | None = None) -> None:
    """report.md and report.html from the files given (the report reads nothing else): loop summaries,
    score files, data stats, trained model directories, and by job name the Snakemake `benchmark:`
    files (`timings`) and the LLM usage files (`usage`)."""
    md, out_dir = Path(md_path), Path(md_path).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    loops = {Path(p).stem: read_json(p) for p in loop_paths}
    blocks = comparison_tables(compared, scores_by_model(score_paths))
    blocks += loop_blocks(loops, out_dir)
    blocks += data_blocks(stats_paths)
    blocks += training_blocks(model_dirs, out_dir)
    blocks += judge_blocks(usage or {})
    blocks += runtime_blocks(timings or {})
    md.write_text(render_md(blocks, md), encoding="utf-8")
    Path(html_path).write_text(render_html(blocks), encoding="utf-8")
