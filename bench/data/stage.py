"""Whole data-stage benchmark: an N-row alpaca JSON lines file through the real workflow (Snakemake:
clean_source, or the shard jobs, then mix), peak memory and time per row.

    python bench/data/stage.py --rows 1000000 [--shard-size 512MB] [--batch-rows 50000]

Writes the file (rows as in bench/data/clean.py: ~200 characters a row, ~10% exact and ~5% near
duplicates, some English-context, mojibake and empty rows, 1% copies of 2,000 evaluation questions,
which become the stage's knowledge evaluation set, so decontamination runs at its intended size),
streamed so that the writer's memory stays small, then runs `snakemake results/data/knowledge/train.parquet`
on a copy of the workflow whose only knowledge source is that file. Peak memory is polled (psutil,
every 0.2 s) over Snakemake and every process below it: `peak_rss_mb` is the largest single process
(the cleaning job), `peak_tree_rss_mb` the whole tree at its largest. Prints JSON and writes it to
bench/results/stage_<rows>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean import (ASKS, ENGLISH_CONTEXT, MOJIBAKE, NEAR_KINDS, PHRASES, SUBJECTS, _answer, _near,  # noqa: E402
                   eval_questions, publish)

WORKFLOW = ("Snakefile", "config.yaml", "config.schema.yaml", "rules", "scripts", "envs", "demo", "profiles")
RECENT = 20_000   # duplicates copy one of the last RECENT rows: the writer keeps only those


def write_rows(path: Path, n: int, questions: list[str], seed: int = 0) -> None:
    """n alpaca rows as JSON lines, with the dirt of bench/data/clean.py, written as they are made."""
    rng = random.Random(seed)
    recent: list[dict] = []
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(n):
            roll = rng.random()
            if recent and roll < 0.15:
                base = rng.choice(recent)
                kind = "exact" if roll < 0.10 else NEAR_KINDS[int((roll - 0.10) / 0.0125)]
                row = dict(base) if kind == "exact" else _near(base, kind, rng)
            else:
                ask = rng.choice(ASKS)
                row = {"instruction": ask.format(*rng.sample(SUBJECTS, ask.count("{}"))), "input": "",
                       "output": _answer(rng)}
                if roll < 0.17:
                    row["instruction"] = rng.choice(ENGLISH_CONTEXT).format(rng.choice(SUBJECTS))
                elif roll < 0.18:
                    row["output"] = row["output"][:10] + MOJIBAKE + row["output"][10:]
                elif roll < 0.19:
                    row["output"] = rng.choice(("", "好", "  "))
                elif roll < 0.20:
                    row["instruction"] = "请回答下面的问题：" + rng.choice(questions)
                if rng.random() < 0.3:
                    row["input"] = f"{rng.choice(SUBJECTS)}：{rng.choice(PHRASES)}。"
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            recent.append(row)
            if len(recent) > RECENT:
                recent[rng.randrange(RECENT)] = recent.pop()


def poll(proc: subprocess.Popen, peaks: dict, stop: threading.Event) -> None:
    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            rss = [p.memory_info().rss for p in procs if p.is_running()]
        except psutil.Error:
            rss = []
        if rss:
            peaks["process"] = max(peaks.get("process", 0), max(rss))
            peaks["tree"] = max(peaks.get("tree", 0), sum(rss))
        stop.wait(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shard-size", default=None, help="clean.shard_size (default: one job)")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--workdir", default=None, help="keep the run here (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="stage_bench_"))
    for name in WORKFLOW:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, dirs_exist_ok=True)
        else:
            shutil.copy(src, work / name)
    questions = eval_questions(2000)
    start = time.perf_counter()
    data = work / "bench_alpaca.jsonl"
    write_rows(data, args.rows, questions)
    (work / "bench_eval.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "question": q, "answer": "-"}, ensure_ascii=False) + "\n"
        for i, q in enumerate(questions)), encoding="utf-8")
    write_seconds = time.perf_counter() - start
    shard = f", shard_size: {json.dumps(args.shard_size)}" if args.shard_size else ""
    (work / "bench.yaml").write_text(
        "data:\n  knowledge:\n"
        f"    - {{name: bench, path: bench_alpaca.jsonl, format: alpaca, clean: {{batch_rows: {args.batch_rows}{shard}}}}}\n"
        "eval:\n  knowledge: {path: bench_eval.jsonl, format: jsonl, judge: ref, threshold_T: 90}\n")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "results/data/knowledge/train.parquet",
           "--configfile", "config.yaml", "bench.yaml"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    peaks: dict = {}
    stop = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watcher = threading.Thread(target=poll, args=(proc, peaks, stop), daemon=True)
    watcher.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    if proc.returncode:
        sys.exit(f"snakemake failed:\n{output[-5000:]}")
    stats = json.loads((work / "results/data/knowledge/bench/stats.json").read_text(encoding="utf-8"))
    import polars as pl
    result = {
        "rows": args.rows, "file_mb": round(data.stat().st_size / 2**20), "batch_rows": args.batch_rows,
        "shard_size": args.shard_size, "write_seconds": round(write_seconds, 1),
        "stage_seconds": round(seconds, 1), "us_per_row": round(seconds / args.rows * 1e6, 1),
        "peak_rss_mb": round(peaks.get("process", 0) / 2**20), "peak_tree_rss_mb": round(peaks.get("tree", 0) / 2**20),
        "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "rows_kept": stats["rows_kept"], "dropped": stats["dropped"], "split": stats["split"],
        "train_rows": pl.scan_parquet(work / "results/data/knowledge/train.parquet").select(pl.len()).collect().item(),
        "command": " ".join(["python", "bench/data/stage.py", *sys.argv[1:]]),
    }
    publish(result, ROOT / "bench" / "results" / f"stage_{args.rows}.json")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
