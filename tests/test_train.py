"""Training: Table 1 arguments, the global batch in samples (packing and cluster shape do not change the
optimizer steps), plan errors, launch commands, real 1- and 2-process DeepSpeed ZeRO-1 runs on CPU (gloo)
that train, save and reload, and a killed run that resumes from its checkpoint."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from transformers import TrainerCallback

from culturalign.io import InputError, frame, read_json, row_id, write_parquet
from culturalign.train.launch import launch_command, train_model
from culturalign.train.trainer import TABLE1, build_trainer, prepare, resolve_batch, training_kwargs

CPU = {"bf16": False, "tf32": False, "use_cpu": True, "gradient_checkpointing": False, "max_length": 96}


def conversations(n: int) -> list[list[dict]]:
    """n conversations of different lengths (1 to 4 answer sentences), so padding and packing differ."""
    answer = "中国的首都是北京。长城是中国古代的军事防御工程。"
    return [[{"role": "user", "content": f"第{i}个问题：中国的首都是哪里？"},
             {"role": "assistant", "content": answer * (1 + i % 4)}] for i in range(n)]


def write_data(path: Path, convs: list[list[dict]]) -> str:
    rows = [{"id": row_id("t", i), "source": "t", "messages": c, "meta": "{}"} for i, c in enumerate(convs)]
    write_parquet(frame(rows), path)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tiny_model) -> str:
    return tiny_model


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (torchrun starts every worker in a session of its own, so killing
    the launcher's process group would leave the workers running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_training_kwargs_are_table1_overridable_and_strict():
    kwargs = training_kwargs({"learning_rate": 2e-5, "packing": False, "nodes": 2}, 3, "/w/checkpoints")
    assert {k: kwargs[k] for k in TABLE1 if k != "learning_rate"} == {k: v for k, v in TABLE1.items()
                                                                      if k != "learning_rate"}
    assert kwargs["learning_rate"] == 2e-5 and kwargs["num_train_epochs"] == 3
    assert kwargs["output_dir"] == "/w/checkpoints" and "packing" not in kwargs and "nodes" not in kwargs
    assert kwargs["deepspeed"].endswith("deepspeed/zero1.json")
    assert json.loads(Path(kwargs["deepspeed"]).read_text())["zero_optimization"]["stage"] == 1
    assert training_kwargs({"deepspeed": "zero3"}, 1, "/w")["deepspeed"].endswith("zero3.json")
    assert training_kwargs({"deepspeed": False}, 1, "/w")["deepspeed"] is None
    with pytest.raises(ValueError, match="train.learnig_rate"):
        training_kwargs({"learnig_rate": 1e-5}, 1, "/w")
    with pytest.raises(ValueError, match="epochs_per_round"):
        training_kwargs({"num_train_epochs": 5}, 1, "/w")


def test_global_batch_samples_derives_accumulation():
    paper = {"global_batch_samples": 128, "per_device_train_batch_size": 1}
    assert resolve_batch(paper, 32)["gradient_accumulation_steps"] == 4     # Table 1: 1 x 4 x 32 GPUs
    assert resolve_batch(paper, 8)["gradient_accumulation_steps"] == 16
    assert resolve_batch({"global_batch_samples": 128}, 1)["gradient_accumulation_steps"] == 128
    assert resolve_batch({**paper, "per_device_train_batch_size": 4}, 2)["gradient_accumulation_steps"] == 16
    assert resolve_batch({**paper, "gradient_accumulation_steps": 4}, 32)["gradient_accumulation_steps"] == 4
    assert resolve_batch({"gradient_accumulation_steps": 3}, 5) == {"gradient_accumulation_steps": 3}
    with pytest.raises(ValueError, match="global_batch_samples 128 is not a multiple of "
                                         "per_device_train_batch_size 1 x world size 24 = 24"):
        resolve_batch(paper, 24)
    with pytest.raises(ValueError, match="gradient_accumulation_steps 2 contradicts"):
        resolve_batch({**paper, "gradient_accumulation_steps": 2}, 32)


class FirstStep(TrainerCallback):
    """Keeps the gradients of the first optimizer step (after clipping, just before the update)."""

    def __init__(self):
        self.gradients: dict[str, torch.Tensor] | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.gradients is None:
            self.gradients = {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def test_packed_and_unpacked_take_the_same_steps_and_gradients(tiny, tmp_path):
    """The same data packed and padded: a micro-batch is 3 samples either way, so both runs take
    ceil(20 / (3 x 2)) = 4 optimizer steps and the first step sees the same samples and gradients."""
    data = write_data(tmp_path / "train.parquet", conversations(20))
    runs = {}
    for packing in (True, False):
        work = tmp_path / f"packing_{packing}"
        cfg = {**CPU, "packing": packing, "deepspeed": False, "per_device_train_batch_size": 3,
               "gradient_accumulation_steps": 2, "learning_rate": 1e-3}
        args = read_json(prepare(model=tiny, data=data, output=str(tmp_path / "out"), workdir=str(work),
                                 train_cfg=cfg, epochs=1))
        first = FirstStep()
        trainer = build_trainer(args, [first])
        trainer.train()
        runs[packing] = (read_json(work / "plan.json"), trainer.state.global_step, first.gradients)
    (plan, steps, packed), (plan_padded, steps_padded, padded) = runs[True], runs[False]
    assert steps == steps_padded == plan["optimizer_steps"] == plan_padded["optimizer_steps"] == 4
    assert plan["samples_per_step"] == 6 and plan["steps_per_epoch"] == 4
    assert plan["tokens_per_step"] == pytest.approx(plan["tokens_per_epoch"] / 4, abs=0.1)
    assert plan["micro_batch_max_tokens"] == 3 * CPU["max_length"]
    assert packed.keys() == padded.keys()
    assert max(g.abs().max().item() for g in packed.values()) > 1e-3
    for name, gradient in packed.items():
        torch.testing.assert_close(gradient, padded[name], rtol=1e-4, atol=1e-6, msg=name)


def test_worker_refuses_another_world_size(tiny, tmp_path):
    data = write_data(tmp_path / "train.parquet", conversations(4))
    args = read_json(prepare(model=tiny, data=data, output=str(tmp_path / "out"), workdir=str(tmp_path / "work"),
                             train_cfg={**CPU, "deepspeed": False, "nproc_per_node": 2}, epochs=1))
    with pytest.raises(RuntimeError, match="planned for 2 processes .* but 1 are running"):
        build_trainer(args, [])


def test_plan_errors_before_compute(tiny, tmp_path):
    data = write_data(tmp_path / "train.parquet", conversations(4))
    common = dict(output=str(tmp_path / "out"), workdir=str(tmp_path / "work"), epochs=1)
    with pytest.raises(InputError, match="training set is empty"):
        prepare(model=tiny, data=write_data(tmp_path / "empty.parquet", []), train_cfg=CPU, **common)
    no_tokenizer = tmp_path / "weights_only"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(tiny) / name, no_tokenizer / name)
    with pytest.raises(InputError, match="no usable tokenizer"):
        prepare(model=str(no_tokenizer), data=data, train_cfg=CPU, **common)
    with pytest.raises(InputError, match="max_length 4096 exceeds the model's max_position_embeddings 256"):
        prepare(model=tiny, data=data, train_cfg={**CPU, "max_length": 4096}, **common)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="train.bf16 is true but this hardware"):
            prepare(model=tiny, data=data, train_cfg={**CPU, "bf16": True}, **common)
    assert not (tmp_path / "out").exists()


def test_plan_and_stale_work_directory(tiny, tmp_path, capsys):
    data = write_data(tmp_path / "train.parquet", conversations(10))
    work = tmp_path / "work"
    (work / "checkpoints" / "checkpoint-7").mkdir(parents=True)
    (work / "fingerprint.json").write_text('{"key": "another job"}')
    prepare(model=tiny, data=data, output=str(tmp_path / "out"), workdir=str(work),
            train_cfg={**CPU, "nproc_per_node": 2}, epochs=2)
    assert not (work / "checkpoints").exists()   # a different job's checkpoints are never resumed
    plan = json.loads((work / "plan.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert plan["parameters"] == sum(p.numel() for p in model.parameters())
    assert plan["samples"] == 10 and plan["world_size"] == 2 and plan["zero_stage"] == 1
    # Table 1's 1 sample x 4 accumulation, on 2 processes: 8 samples a step, ceil(10 / 8) = 2 steps an epoch
    assert (plan["samples_per_step"], plan["steps_per_epoch"], plan["optimizer_steps"]) == (8, 2, 4)
    assert plan["train_flops"] == pytest.approx(6 * plan["parameters"] * plan["tokens_per_epoch"] * 2)
    mem = plan["memory_per_gpu_gib"]
    assert mem["optimizer"] == pytest.approx(8 * plan["parameters"] / 2 / 1024 ** 3, abs=1e-3)  # fp32: m, v sharded
    printed = capsys.readouterr().out
    assert "samples / step        8 = 1 per micro-batch (packed, no padding) x 4 accumulation x 2 process(es)" in printed
    assert "steps / epoch         2 (the last one takes the remaining 2 samples)" in printed
    assert f"tokens / step         ~{plan['tokens_per_epoch'] / 2:,.0f} (mean" in printed


def test_launch_command_local_and_slurm():
    assert launch_command(1, 4, "/w/args.json", {})[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
        "-m", "culturalign.train.trainer", "--args-json", "/w/args.json"]
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    command = launch_command(2, 8, "/w/args.json", env, rdzv_host="gpu07")
    assert command[:8] == ["srun", "--nodes", "2", "--ntasks", "2", "--ntasks-per-node", "1", "--kill-on-bad-exit=1"]
    assert command[8:11] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[11:] == ["--nnodes", "2", "--nproc-per-node", "8", "--rdzv-backend", "c10d",
                            "--rdzv-endpoint", "gpu07:24242", "--rdzv-id", "4242",
                            "-m", "culturalign.train.trainer", "--args-json", "/w/args.json"]
    with pytest.raises(RuntimeError, match="needs a SLURM allocation"):
        launch_command(2, 8, "/w/args.json", {})


def test_deepspeed_zero1_one_and_two_processes_same_global_batch(tiny, tmp_path):
    """The same global batch of 4 samples on 1 process (accumulation 4) and on 2 (accumulation 2): the
    same optimizer steps with the same learning rates, and the same samples in every step (the same
    loss and gradient norm, step by step)."""
    data = write_data(tmp_path / "train.parquet", conversations(48))
    cfg = {**CPU, "global_batch_samples": 4, "learning_rate": 1e-2}
    summaries, logs = {}, {}
    for procs in (1, 2):
        out, work = tmp_path / f"p{procs}" / "kg_r1", tmp_path / f"p{procs}" / ".work" / "kg_r1"
        train_model(model=tiny, data=data, output=str(out), workdir=str(work),
                    train_cfg={**cfg, "nproc_per_node": procs}, epochs=2, log_path=str(tmp_path / f"p{procs}.log"))
        assert not work.exists()                     # work directory removed after the final rename
        summaries[procs], logs[procs] = json.loads((out / "train_summary.json").read_text()), read_log(out / "trainer_log.jsonl")
    assert [(s["world_size"], s["grad_accum"], s["samples_per_step"]) for s in summaries.values()] == [(1, 4, 4), (2, 2, 4)]
    assert summaries[1]["global_step"] == summaries[2]["global_step"] == summaries[2]["optimizer_steps"] == 24
    assert [r["learning_rate"] for r in logs[1]] == [r["learning_rate"] for r in logs[2]]
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in logs[1]] == pytest.approx([r[key] for r in logs[2]], rel=1e-4)

    summary, rows = summaries[2], logs[2]
    assert summary["zero_stage"] == 1 and summary["resumed_from_step"] is None
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert args.deepspeed.endswith("zero1.json") and args.world_size == 2
    assert [r["step"] for r in rows] == list(range(1, summary["global_step"] + 1))
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5
    assert all(r["tokens_per_s"] > 0 and r["grad_norm"] > 0 for r in rows)
    # Reload: a normal HF directory; weights moved away from the base model; the chat template kept.
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.use_cache is True
    before, after = load_file(Path(tiny) / "model.safetensors"), load_file(out / "model.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    assert (after[name].float() - before[name]).abs().max() > 1e-3
    assert AutoTokenizer.from_pretrained(out).chat_template == AutoTokenizer.from_pretrained(tiny).chat_template


def test_killed_run_resumes_from_its_checkpoint(tiny, tmp_path):
    data = write_data(tmp_path / "train.parquet", conversations(80))
    out, work = tmp_path / "kg_r1", tmp_path / ".work" / "kg_r1"
    cfg = {**CPU, "nproc_per_node": 2, "packing": False, "gradient_accumulation_steps": 1, "save_steps": 2,
           "learning_rate": 1e-3}
    kwargs = dict(model=tiny, data=data, output=str(out), workdir=str(work), train_cfg=cfg, epochs=1)
    code = f"from culturalign.train.launch import train_model; train_model(**{kwargs!r}, log_path={str(tmp_path / 'a.log')!r})"
    first = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(work.glob("checkpoints/checkpoint-*/COMPLETE")):
            assert first.poll() is None, f"run ended before a checkpoint: {(tmp_path / 'a.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.1)
    finally:
        for pid in process_tree(first.pid):   # preemption: every process dies, no chance to clean up
            os.kill(pid, signal.SIGKILL)
        first.wait()
    assert not out.exists()
    done = max(int(p.parent.name.split("-")[1]) for p in work.glob("checkpoints/checkpoint-*/COMPLETE"))
    shards = list(work.glob(f"checkpoints/checkpoint-{done}/global_step{done}/*optim_states.pt"))
    assert len(shards) == 2                       # ZeRO-1: optimizer state partitioned over both ranks

    train_model(**kwargs, log_path=str(tmp_path / "b.log"))
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from_step"] >= done >= 2
    assert summary["global_step"] == summary["optimizer_steps"] == 40   # 80 samples / 2 ranks, 1 epoch
    assert "resuming from" in (tmp_path / "b.log").read_text()
    assert [r["step"] for r in read_log(out / "trainer_log.jsonl")] == list(range(1, 41))
