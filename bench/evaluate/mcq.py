"""Benchmark: multiple choice by log-likelihood vs generate-and-parse, questions/s on the same set.

    python bench/evaluate/mcq.py                          # -> bench/results/mcq.json
    python bench/evaluate/mcq.py --questions 64 --shots 5 --max-new-tokens 8 48

The set is the first CMMLU questions (../shared/data/cmmlu) when present, else a few built-in ones.
The model is the tiny demo model (culturalign.train.tiny defaults, random weights: greedy answers run to
max_new_tokens, as an unhelpful model's would; 48 is the demo config's generation.max_new_tokens, the
paper's is 1024, 8 is a generous floor for "answer with a letter"). Both methods run end to end from the model directory
(load, prompts, model calls, choice) with the same batch size; log-likelihood sees the k-shot prompt
without a chat template (lm-evaluation-harness's way), generation the same prompt as a chat user turn.
Each method runs once to warm up, then the methods take turns `--repeats` times (so a busy machine slows
them alike); medians are reported. `--threads` (default 1) pins torch's threads for steadier figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from culturalign.evaluate.generate import generate  # noqa: E402
from culturalign.evaluate.guard import generation_items, load_guard_set, mcq_metrics, parse_choice  # noqa: E402
from culturalign.io import write_json  # noqa: E402
from culturalign.evaluate.loglik import build_prompts, loglik_choices  # noqa: E402
from culturalign.train.tiny import build_tiny  # noqa: E402

BUILTIN = [{"id": str(k), "subject": "chinese_history", "question": q, "options": o, "answer": a, "shots": []}
           for k, (q, o, a) in enumerate([("中国的首都是哪里？", ["上海", "北京", "广州", "深圳"], 1),
                                          ("春节吃什么？", ["月饼", "粽子", "饺子", "汤圆"], 2),
                                          ("四大发明不包括哪一项？", ["造纸术", "指南针", "火药", "瓷器"], 3),
                                          ("长城主要用于什么？", ["防御", "灌溉", "交通", "祭祀"], 0)] * 8)]


def mcq_items(n: int, shots: int) -> tuple[str, list[dict]]:
    path = REPO / ".." / "shared" / "data" / "cmmlu"
    if path.is_dir():
        return "cmmlu", load_guard_set({"name": "cmmlu", "path": path, "format": "cmmlu", "shots": shots,
                                        "limit": n})["items"]
    return "builtin (0-shot)", BUILTIN[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, nargs="+", default=[8, 48])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden-size", type=int, default=64, help="of the tiny model (culturalign.train.tiny default 64)")
    parser.add_argument("--layers", type=int, default=2, help="of the tiny model (culturalign.train.tiny default 2)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "mcq.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    set_name, items = mcq_items(args.questions, args.shots)
    prompts = build_prompts(items, "cmmlu")
    n_options = [len(it["options"]) for it in items]
    with tempfile.TemporaryDirectory() as model_dir:
        build_tiny(model_dir, prompts, hidden_size=args.hidden_size, layers=args.layers,
                   intermediate_size=2 * args.hidden_size, max_position_embeddings=4096)

        def by_loglik() -> list[int | None]:
            return loglik_choices(model_dir, prompts, n_options, batch_size=args.batch_size)

        def by_generation(max_new_tokens: int) -> list[int | None]:
            out = generate(model_dir, generation_items(items, prompts), max_new_tokens=max_new_tokens,
                           batch_size=args.batch_size, backend="transformers")
            return [parse_choice(a, it) for a, it in zip(out["answer"].to_list(), items)]

        runs = [("loglik", by_loglik)]
        runs += [(f"generate_{n}", lambda n=n: by_generation(n)) for n in args.max_new_tokens]
        chosen = {name: run() for name, run in runs}  # warm-up
        walls: dict[str, list[float]] = {name: [] for name, _ in runs}
        for _ in range(args.repeats):
            for name, run in runs:
                began = time.perf_counter()
                chosen[name] = run()
                walls[name].append(time.perf_counter() - began)
        results = {}
        for name, _ in runs:
            median = statistics.median(walls[name])
            metrics = mcq_metrics(items, chosen[name], method=name.split("_")[0])
            results[name] = {"median_wall_s": round(median, 3), "questions_per_s": round(len(items) / median, 1),
                             "runs_wall_s": [round(w, 3) for w in walls[name]],
                             **{k: v for k, v in metrics.items() if k in ("acc", "n_unparsed")}}
    report = {"set": set_name, "questions": len(items), "shots": args.shots, "batch_size": args.batch_size,
              "model": f"tiny Llama, random weights, hidden {args.hidden_size}, {args.layers} layers",
              "torch_threads": torch.get_num_threads(),
              **results,
              "speedup_vs_generate": {n: round(results["loglik"]["questions_per_s"]
                                               / results[f"generate_{n}"]["questions_per_s"], 1)
                                      for n in args.max_new_tokens}}
    write_json(report, args.out)
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
