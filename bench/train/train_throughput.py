"""Training throughput of three ways to batch the same alpaca-like samples, in one run. Every mode
puts --batch SAMPLES in a micro-batch (culturalign.train.trainer's rule: an optimizer step is counted in samples,
packing or not), so all modes take the same steps over the same samples and differ only in padding:

- packed:     the micro-batch's samples end to end in one row, per-sample position ids, no padding
              (culturalign.train.packing)
- dynamic:    the samples padded to the longest of the micro-batch
- pad_to_max: every sample padded to --seq tokens (the FastChat-era behaviour)

Each step is a full training step (forward, backward, AdamW), gradient checkpointing on as in Table 1.
Figures count real (non-padding) tokens only: tokens/s, MFU = 6 * N * tokens/s / device peak, and peak
memory. Default: a randomly initialised ~1.2B Llama (Llama-3.2-1B shape) at sequence 4096 in bf16 on one
GPU; --smoke: a tiny model on CPU in about a minute. Writes bench/results/train_throughput.json.

    python bench/train/train_throughput.py            # GPU
    python bench/train/train_throughput.py --smoke    # CPU
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import random
import resource
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from culturalign.train.chat import IGNORE_INDEX
from culturalign.train.packing import flatten_collate, pad_collate, with_positions

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
A100_BF16_TFLOPS = 312.0
PAPER = {"samples": 100_000, "epochs": 2, "gpus": 32, "hours": 15.67, "parameters": 8.03e9}   # Llama-3-8B, 32 A100
SIZES = {
    # Llama-3.2-1B shape (tied embeddings): ~1.24B parameters.
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
               intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True),
    "smoke": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                  intermediate_size=128, vocab_size=2000, tie_word_embeddings=True),
}


def alpaca_like_lengths(n: int, seq: int, scale: float, seed: int) -> list[tuple[int, int]]:
    """(prompt, answer) token lengths: log-normal, medians ~40 and ~120 tokens at scale 1 with a long
    tail (Alpaca/Chinese instruction sets: most samples a few hundred tokens, a few thousand max)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = max(4, int(rng.lognormvariate(math.log(40 * scale), 0.9)))
        answer = max(2, int(rng.lognormvariate(math.log(120 * scale), 1.0)))
        total = min(prompt + answer, seq)
        out.append((min(prompt, total - 1), total))
    return out


def samples_from(lengths: list[tuple[int, int]], vocab: int, seed: int) -> list[dict[str, list[int]]]:
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for prompt, total in lengths:
        ids = torch.randint(0, vocab, (total,), generator=gen).tolist()
        samples.append({"input_ids": ids, "labels": [IGNORE_INDEX] * prompt + ids[prompt:]})
    return samples


def batches(mode: str, samples: list[dict], batch: int, seq: int, pad_id: int) -> list[dict[str, torch.Tensor]]:
    """Consecutive micro-batches of `batch` samples, collated as `mode` says."""
    groups = [samples[i:i + batch] for i in range(0, len(samples), batch)]
    if mode == "packed":
        return [flatten_collate(with_positions(g)) for g in groups]
    return [pad_collate(g, pad_id, pad_to=seq if mode == "pad_to_max" else None) for g in groups]


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def measure(model, optimizer, batch_list, *, device, autocast, warmup: int, steps: int) -> dict:
    """Run warmup + timed training steps; real tokens counted from the labels' row spans."""
    def step(batch):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def real_tokens(batch):
        return int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()

    for batch in batch_list[:warmup]:
        step(batch)
    timed = batch_list[warmup:warmup + steps]
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for batch in timed:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(real_tokens(b) for b in timed)
    computed = sum(b["input_ids"].numel() for b in timed)
    samples = sum(int((b["position_ids"] == 0).sum()) if "position_ids" in b else b["input_ids"].shape[0]
                  for b in timed)
    return {
        "steps": len(timed), "seconds": round(seconds, 3), "samples": samples, "real_tokens": tokens,
        "computed_tokens": computed, "padding_fraction": round(1 - tokens / computed, 4),
        "tokens_per_s": round(tokens / seconds, 1), "samples_per_s": round(samples / seconds, 3),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU, about a minute")
    parser.add_argument("--seq", type=int, help="max length (default 4096; smoke 512)")
    parser.add_argument("--batch", type=int, default=8, help="samples per micro-batch (per_device_train_batch_size)")
    parser.add_argument("--steps", type=int, help="timed steps per mode (default 20; smoke 10)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds over all modes; each mode's fastest round is reported (other load on the "
                             "machine only ever adds time, and a shared CPU has plenty)")
    parser.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, flash_attention_2, ...)")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: by GPU name)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "train_throughput.json"))
    opts = parser.parse_args()

    smoke = opts.smoke or not torch.cuda.is_available()
    seq, steps = opts.seq or (512 if smoke else 4096), opts.steps or (10 if smoke else 20)
    device = torch.device("cpu" if smoke else "cuda")
    torch.manual_seed(0)
    config = LlamaConfig(**SIZES["smoke" if smoke else "1b"], max_position_embeddings=max(seq, 4096), use_cache=False)
    model = LlamaForCausalLM(config).to(device)
    model.config._attn_implementation = opts.attn
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    lengths = alpaca_like_lengths(4000, seq, scale=0.125 if smoke else 1.0, seed=0)
    samples = samples_from(lengths, config.vocab_size, seed=0)
    peak = peak_tflops(device, opts.peak_tflops)
    modes = ("packed", "dynamic", "pad_to_max")
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(opts.repeats):   # modes interleaved, so a slow spell of the machine hits all of them
        for mode in modes:
            batch_list = batches(mode, samples, opts.batch, seq, pad_id=0)
            runs[mode].append(measure(model, optimizer, batch_list, device=device, autocast=autocast,
                                      warmup=opts.warmup, steps=steps))
    results = {}
    for mode in modes:
        r = min(runs[mode], key=lambda run: run["seconds"])
        r["seconds_all_repeats"] = [run["seconds"] for run in runs[mode]]
        r["achieved_tflops"] = round(6 * parameters * r["tokens_per_s"] / 1e12, 4)
        r["mfu"] = round(r["achieved_tflops"] / peak, 4) if peak else None
        results[mode] = r
        print(f"{mode:>10}: {r['tokens_per_s']:>12,.0f} tokens/s  MFU {r['mfu']}  padding {r['padding_fraction']:.1%}"
              f"  peak mem {r['peak_memory_gib']} GiB", flush=True)

    mean_tokens = sum(t for _, t in lengths) / len(lengths)
    packed_mfu = results["packed"]["mfu"]
    projection = None
    if packed_mfu and not smoke:
        # The paper's workload (Llama-3-8B, 100K samples x 2 epochs) on 32 A100s at our measured MFU.
        flops = 6 * PAPER["parameters"] * PAPER["samples"] * PAPER["epochs"] * mean_tokens
        hours = flops / (PAPER["gpus"] * A100_BF16_TFLOPS * 1e12 * packed_mfu) / 3600
        projection = {"assumed_mean_tokens_per_sample": round(mean_tokens, 1), "hours_on_32_a100": round(hours, 2),
                      "paper_hours": PAPER["hours"], "assumes": "same MFU for 8B on A100 as measured here"}
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "smoke": smoke, "model": {"parameters": parameters, **SIZES["smoke" if smoke else "1b"]},
        "seq": seq, "samples_per_micro_batch": opts.batch, "dtype": "bf16 autocast" if device.type == "cuda" else "fp32", "attn_implementation": opts.attn,
        "gradient_checkpointing": True, "peak_tflops": peak,
        "length_distribution": {"samples": len(lengths), "mean_tokens": round(mean_tokens, 1),
                                "max_tokens": max(t for _, t in lengths)},
        "modes": results,
        "packed_vs_pad_to_max_tokens_per_s": round(results["packed"]["tokens_per_s"] / results["pad_to_max"]["tokens_per_s"], 2),
        "packed_vs_dynamic_tokens_per_s": round(results["packed"]["tokens_per_s"] / results["dynamic"]["tokens_per_s"], 2),
        "process_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "paper_workload_projection": projection,
    }
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"packed / pad_to_max tokens/s: {report['packed_vs_pad_to_max_tokens_per_s']}x; written {opts.out}")


if __name__ == "__main__":
    main()
