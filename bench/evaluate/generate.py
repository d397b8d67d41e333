"""Benchmark: batched vs one-at-a-time greedy generation (tokens/s), endpoint generation at several
concurrency levels, and vLLM vs transformers on a GPU.

    python bench/evaluate/generate.py                     # tiny model on CPU + endpoint -> bench/results/generate.json
    python bench/evaluate/generate.py --gpu-model DIR     # also vLLM vs transformers on DIR (~1B), when a GPU is present

The CPU part builds the tiny demo model (culturalign.train.tiny, random weights: greedy answers run to
max_new_tokens, so every configuration does the same amount of work). Prompts are the first A-Eval
questions when ../shared/data is present, else the demo knowledge set, else a few built-in ones.
Each configuration runs `--repeats` times after one warm-up; medians are reported.

The endpoint part starts tests/openai_server.py through culturalign.evaluate.serve (as the generate job would
start `vllm serve`), answering every request after `--latency` seconds, and sends the prompts through
culturalign.evaluate.endpoint at each `--concurrency` level (one run each, after a warm-up). The stand-in does
no model work, so this measures what requests in flight buy against a server's latency (and the
client's own overhead), beside the in-process figures; a real server adds its compute on top.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from culturalign.evaluate.evalsets import load  # noqa: E402
from culturalign.evaluate.endpoint import generate_endpoint  # noqa: E402
from culturalign.evaluate.generate import generate  # noqa: E402
from culturalign.io import write_json  # noqa: E402
from culturalign.evaluate.serve import KEY_VAR, serving  # noqa: E402
from culturalign.train.tiny import build_tiny  # noqa: E402

BUILTIN = ["请介绍一下长城的历史。", "把这句话翻译成英文：今天天气很好。", "计算 12 乘以 13 等于多少？",
           "写一首关于春天的五言绝句。", "中国的四大发明是什么？", "请总结下面这段话的主要内容：人工智能正在改变世界。"]


def questions(n: int) -> list[str]:
    for path in (REPO / ".." / "shared" / "data" / "a-eval" / "llm_678_2024-06-11-151217.json",
                 REPO / "demo" / "eval" / "knowledge.jsonl"):
        if path.is_file():
            return [it["question"] for it in load(path)][:n]
    return (BUILTIN * (n // len(BUILTIN) + 1))[:n]


def measure(model_dir: str, items: list[dict], *, batch_size: int, max_new_tokens: int, backend: str,
            repeats: int) -> dict:
    generate(model_dir, items[:batch_size], max_new_tokens=4, batch_size=batch_size, backend=backend)  # warm-up
    rates, walls, tokens = [], [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        out = generate(model_dir, items, max_new_tokens=max_new_tokens, batch_size=batch_size, backend=backend)
        wall = time.perf_counter() - began
        tokens = int(out["answer_tokens"].sum())
        rates.append(tokens / wall)
        walls.append(wall)
    return {"backend": backend, "batch_size": batch_size, "generated_tokens": tokens,
            "median_wall_s": round(statistics.median(walls), 3),
            "requests_per_s": round(len(items) / statistics.median(walls), 1),
            "median_tokens_per_s": round(statistics.median(rates), 1), "runs_tokens_per_s": [round(r, 1) for r in rates]}


def cpu_part(args) -> dict:
    texts = questions(args.prompts)
    items = [{"id": str(i), "question": q, "history": []} for i, q in enumerate(texts)]
    with tempfile.TemporaryDirectory() as model_dir:
        build_tiny(model_dir, texts + BUILTIN)   # the config.yaml defaults: 2 layers, hidden 64
        one = measure(model_dir, items, batch_size=1, max_new_tokens=args.max_new_tokens, backend="transformers",
                      repeats=args.repeats)
        batched = measure(model_dir, items, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                          backend="transformers", repeats=args.repeats)
    return {"model": "tiny (culturalign.train.tiny defaults)", "prompts": len(items), "max_new_tokens": args.max_new_tokens,
            "torch_threads": torch.get_num_threads(), "one_at_a_time": one, "batched": batched,
            "speedup": round(batched["median_tokens_per_s"] / one["median_tokens_per_s"], 2)}


def endpoint_part(args) -> dict:
    items = [{"id": str(i), "question": q, "history": []} for i, q in enumerate(questions(args.endpoint_prompts))]
    stand_in = f"{sys.executable} {REPO / 'tests' / 'openai_server.py'} --port {{port}} --model {{model_dir}} " \
               f"--latency {args.latency}"
    levels = []
    with serving("bench-model", {"command": stand_in, "health_timeout": 60}) as served:
        endpoint = {"base_url": served.base_url, "model": served.model, "api_key_env": KEY_VAR, "timeout": 60}
        generate_endpoint(items[:4], endpoint, max_new_tokens=args.max_new_tokens, cache_path=None,
                          usage_path=None)   # warm-up: connections, imports
        for concurrency in args.concurrency:
            began = time.perf_counter()
            out = generate_endpoint(items, endpoint | {"concurrency": concurrency}, max_new_tokens=args.max_new_tokens,
                                    cache_path=None, usage_path=None)
            wall = time.perf_counter() - began
            tokens = int(out["answer_tokens"].sum())
            levels.append({"concurrency": concurrency, "wall_s": round(wall, 3),
                           "requests_per_s": round(len(items) / wall, 1), "tokens_per_s": round(tokens / wall, 1),
                           "generated_tokens": tokens})
    return {"server": "tests/openai_server.py (stand-in: fixed latency, no model work; 1 character = 1 token)",
            "latency_s": args.latency, "prompts": len(items), "max_new_tokens": args.max_new_tokens, "levels": levels}


def gpu_part(args) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU on this machine"}
    if not args.gpu_model:
        return {"skipped": "no --gpu-model DIR given (a ~1B chat model directory)"}
    try:
        import vllm  # noqa: F401
    except ImportError:
        return {"skipped": "vllm is not installed"}
    items = [{"id": str(i), "question": q, "history": []} for i, q in enumerate(questions(args.gpu_prompts))]
    hf = measure(args.gpu_model, items, batch_size=args.gpu_batch_size, max_new_tokens=args.max_new_tokens,
                 backend="transformers", repeats=args.repeats)
    fast = measure(args.gpu_model, items, batch_size=args.gpu_batch_size, max_new_tokens=args.max_new_tokens,
                   backend="vllm", repeats=args.repeats)
    return {"model": args.gpu_model, "gpu": torch.cuda.get_device_name(0), "prompts": len(items),
            "transformers": hf, "vllm": fast,
            "speedup": round(fast["median_tokens_per_s"] / hf["median_tokens_per_s"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--endpoint-prompts", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the stand-in server takes per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--gpu-model", default=None)
    parser.add_argument("--gpu-prompts", type=int, default=256)
    parser.add_argument("--gpu-batch-size", type=int, default=64)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "generate.json"))
    args = parser.parse_args()
    result = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "cpu": platform.processor() or platform.machine()},
              "cpu": cpu_part(args), "endpoint": endpoint_part(args), "gpu": gpu_part(args)}
    write_json(result, args.out)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(summary(result))


def summary(result: dict) -> str:
    """requests/s and tokens/s of every configuration, one line each."""
    cpu, ep = result["cpu"], result["endpoint"]
    lines = [f"{'configuration':<52} {'requests/s':>10} {'tokens/s':>10}"]
    for name in ("one_at_a_time", "batched"):
        run = cpu[name]
        label = f"in-process tiny model, batch {run['batch_size']}"
        lines.append(f"{label:<52} {run['requests_per_s']:>10} {run['median_tokens_per_s']:>10}")
    for level in ep["levels"]:
        label = f"endpoint ({ep['latency_s']}s/request), concurrency {level['concurrency']}"
        lines.append(f"{label:<52} {level['requests_per_s']:>10} {level['tokens_per_s']:>10}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
