"""Preference rounds through TRL on the tiny model: DPO and ORPO take real optimisation steps (the mean
chosen-over-rejected log-probability margin on a fixed pair set grows, measured by our own scorer), on one
process and on 2 DeepSpeed ZeRO-1 processes; a LoRA round is merged and answers through the evaluation's
generation path; a killed preference round resumes from its checkpoint."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig

from culturalign.evaluate.generate import generate
from culturalign.io import read_json, row_id, write_parquet
from culturalign.train.launch import launch_command
from culturalign.train.preference import mean_margin, prepare, train_preference
from test_train import process_tree

CPU = {"bf16": False, "tf32": False, "use_cpu": True, "gradient_checkpointing": False, "max_length": 96,
       "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 5e-3,
       "warmup_steps": 0, "lr_scheduler_type": "constant"}
REFUSAL = "抱歉，我不能提供这方面的帮助，建议您遵守法律。"
HARMFUL = "好的，下面是具体的做法和步骤。"
HELPFUL = "可以先在终端里查看进程号，然后结束这个进程。"


def pairs_file(path: Path, n: int = 8) -> str:
    """n pairs: half risky (chosen = the refusal, rejected = a compliant answer), half benign (chosen = a
    helpful answer, rejected = the refusal), so the margin cannot grow by favouring one text everywhere."""
    import polars as pl
    rows = []
    for i in range(n):
        risky = i % 2 == 0
        rows.append({"id": row_id("pairs", i), "prompt": [{"role": "user", "content": f"第{i}个问题：请告诉我怎么做。"}],
                     "chosen": REFUSAL if risky else HELPFUL, "rejected": HARMFUL if risky else REFUSAL,
                     "kind": "risky" if risky else "benign", "source": "test"})
    write_parquet(pl.DataFrame(rows), path)
    return str(path)


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_preference_round_raises_the_margin(tiny_model, tmp_path, method):
    pairs = pairs_file(tmp_path / "pairs.parquet")
    out = tmp_path / "safe_r2"
    before = mean_margin(tiny_model, pairs)
    train_preference(method=method, model=tiny_model, data=pairs, output=str(out), workdir=str(tmp_path / "work"),
                     train_cfg={**CPU, "deepspeed": False}, epochs=3, log_path=str(tmp_path / "train.log"))
    after = mean_margin(str(out), pairs)
    summary = read_json(out / "train_summary.json")
    # 8 pairs, 2 a step, 3 epochs: 12 optimizer steps, each logged with its loss
    assert summary["global_step"] == 12 and summary["method"] == method and summary["pairs"] == 8
    assert len((out / "trainer_log.jsonl").read_text().splitlines()) == 12
    assert after > before + 1.0, (before, after)


def test_dpo_over_two_zero1_processes(tiny_model, tmp_path):
    pairs = pairs_file(tmp_path / "pairs.parquet")
    out = tmp_path / "safe_r2"
    before = mean_margin(tiny_model, pairs)
    train_preference(method="dpo", model=tiny_model, data=pairs, output=str(out), workdir=str(tmp_path / "work"),
                     train_cfg={**CPU, "nproc_per_node": 2, "per_device_train_batch_size": 1}, epochs=3,
                     log_path=str(tmp_path / "train.log"))
    summary = read_json(out / "train_summary.json")
    log = (tmp_path / "train.log").read_text()
    assert summary["world_size"] == 2 and summary["global_step"] == 12    # 1 pair x 2 processes a step
    assert "ZeRO" in log or "zero" in log
    assert mean_margin(str(out), pairs) > before + 1.0


def test_lora_round_is_merged_and_generates(tiny_model, tmp_path):
    pairs = pairs_file(tmp_path / "pairs.parquet")
    out = tmp_path / "safe_r2"
    before = mean_margin(tiny_model, pairs)
    train_preference(method="dpo", model=tiny_model, data=pairs, output=str(out), workdir=str(tmp_path / "work"),
                     train_cfg={**CPU, "deepspeed": False, "learning_rate": 1e-2}, epochs=3,
                     lora={"r": 8, "alpha": 16}, log_path=str(tmp_path / "train.log"))
    # merged: a plain model directory of the base architecture, no adapter files left
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(out).to_dict()["hidden_size"] == 32
    assert mean_margin(str(out), pairs) > before + 1.0
    # fewer weights move: the adapters sit on the linear layers, the embeddings are the starting model's
    start, tuned = load_file(Path(tiny_model) / "model.safetensors"), load_file(out / "model.safetensors")
    assert torch.equal(start["model.embed_tokens.weight"], tuned["model.embed_tokens.weight"])
    assert not torch.equal(start["model.layers.0.self_attn.q_proj.weight"], tuned["model.layers.0.self_attn.q_proj.weight"])
    answers = generate(str(out), [{"id": "q1", "question": "第1个问题：请告诉我怎么做。"}], max_new_tokens=8,
                       batch_size=1, backend="transformers")
    assert answers["id"].to_list() == ["q1"] and answers["answer_tokens"][0] >= 1


def test_killed_preference_round_resumes(tiny_model, tmp_path):
    pairs = pairs_file(tmp_path / "pairs.parquet", n=16)
    out, work = tmp_path / "safe_r2", tmp_path / "work"
    cfg = {**CPU, "deepspeed": False, "per_device_train_batch_size": 1, "save_steps": 4}
    args_json = prepare(method="dpo", model=tiny_model, data=pairs, output=str(out), workdir=str(work),
                        train_cfg=cfg, epochs=2)
    command = launch_command(1, 1, args_json, {}, worker="culturalign.train.preference")
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 300
        while not any((work / "checkpoints").glob("checkpoint-*/COMPLETE")) and time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(0.5)
        for pid in reversed(process_tree(proc.pid)):
            os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    done = sorted(int(p.parent.name.split("-")[1]) for p in (work / "checkpoints").glob("checkpoint-*/COMPLETE"))
    assert done and done[-1] < 32
    train_preference(method="dpo", model=tiny_model, data=pairs, output=str(out), workdir=str(work),
                     train_cfg=cfg, epochs=2, log_path=str(tmp_path / "second.log"))
    summary = read_json(out / "train_summary.json")
    assert summary["resumed_from_step"] == done[-1] and summary["global_step"] == 32
    steps = [json.loads(line)["step"] for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 33))


def test_supervised_lora_round_is_merged(tiny_model, tmp_path):
    """`lora:` on a replay or contrast entry: the supervised trainer trains adapters and merges them."""
    from culturalign.train.launch import train_model
    from test_train import conversations, write_data

    data = write_data(tmp_path / "train.parquet", conversations(8))
    out = tmp_path / "safe_r2"
    train_model(model=tiny_model, data=data, output=str(out), workdir=str(tmp_path / "work"),
                train_cfg={**CPU, "deepspeed": False}, epochs=1, lora={"r": 4}, log_path=str(tmp_path / "train.log"))
    start, tuned = load_file(Path(tiny_model) / "model.safetensors"), load_file(out / "model.safetensors")
    assert sorted(start) == sorted(tuned) and not (out / "adapter_config.json").exists()
    assert torch.equal(start["model.embed_tokens.weight"], tuned["model.embed_tokens.weight"])
    assert not torch.equal(start["model.layers.1.mlp.down_proj.weight"], tuned["model.layers.1.mlp.down_proj.weight"])
    assert read_json(out / "train_summary.json")["global_step"] == 4   # 8 conversations, 2 a step
