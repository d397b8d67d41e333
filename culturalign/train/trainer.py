"""Full-parameter instruction tuning: Hugging Face Trainer + DeepSpeed (ZeRO-1 by default).

Two halves, so that the expensive, error-prone part runs once and before any GPU is touched:

- `prepare(...)` runs in the launching process: validates the inputs (empty data, missing tokenizer,
  max_length beyond the model's positions, bf16/tf32 on hardware without them, a global batch that
  does not split over the processes), tokenises the data once, prints the plan, and writes everything
  the workers need into the work directory.
- `python -m culturalign.train.trainer --args-json FILE` is the worker `torchrun` starts on every GPU: it loads
  the tokenised data, trains, checkpoints into the work directory, resumes from the last complete
  checkpoint when rerun, and on success moves the finished model to its final directory in one rename
  (Snakemake deletes a failed job's outputs, so checkpoints never live inside the output).

An optimizer step is counted in samples, as in the paper's Table 1 (1 per GPU x 4 accumulation x 32
GPUs = 128): per_device_train_batch_size x gradient_accumulation_steps x world size, packing or not
(culturalign.train.packing). `train.global_batch_samples` keeps that number fixed on any cluster shape by
deriving the accumulation from it.

Work directory layout (`results/models/.work/{model}/`): args.json, fingerprint.json, data.parquet,
plan.json, trainer_log.jsonl, checkpoints/checkpoint-N/ (COMPLETE marks a fully written one), final/.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback,
                          TrainingArguments)

from culturalign.hf import require_chat_template
from culturalign.io import InputError, read_json, write_json, write_parquet
from culturalign.train.chat import tokenize_all
from culturalign.train.packing import flatten_collate, pad_collate, with_positions
from culturalign.train.plan import make_plan

log = logging.getLogger("culturalign.train.trainer")

# The paper's Table 1.
TABLE1 = {
    "bf16": True,
    "tf32": True,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 4,
    "learning_rate": 1e-6,
    "weight_decay": 0.0,
    "warmup_steps": 0.03,          # a float < 1 is a fraction of the steps in transformers 5
    "lr_scheduler_type": "cosine",
    "gradient_checkpointing": True,
}
# How we run it (not in the paper): log every step, checkpoint for resume, no external trackers.
ENGINE = {
    "logging_steps": 1,
    "save_strategy": "steps",
    "save_steps": 200,
    "save_total_limit": 2,         # >= 2 keeps the previous complete checkpoint while the next is written
    "report_to": "none",
    "ddp_timeout": 3600,           # seconds; a dead rank fails the job instead of hanging it forever
    "gradient_checkpointing_kwargs": {"use_reentrant": False},
    "include_num_input_tokens_seen": "non_padding",
    "remove_unused_columns": False,
}
# Keys of the `train:` config block that are ours, not TrainingArguments fields.
OWN = {
    "nodes": 1,
    "nproc_per_node": 1,           # or "auto": every visible GPU
    "packing": True,
    "max_length": 8192,
    "deepspeed": None,             # None: packaged ZeRO-1; "zero1"|"zero2"|"zero3"; a JSON path; False: off
    "attn_implementation": "sdpa",
    "global_batch_samples": None,  # None: per_device x accumulation x world size; else accumulation derived
}
# Set by the workflow, never by the config.
RESERVED = {"output_dir": "the work directory is derived from the model name",
            "num_train_epochs": "set loop.<stage>.epochs_per_round instead"}
DEEPSPEED_DIR = Path(__file__).parent / "deepspeed"


def own_options(train_cfg: dict) -> dict[str, Any]:
    own = {key: train_cfg.get(key, default) for key, default in OWN.items()}
    if own["nproc_per_node"] == "auto":
        own["nproc_per_node"] = max(1, torch.cuda.device_count())
    return own


def resolve_batch(train_cfg: dict, world_size: int) -> dict:
    """The config with gradient_accumulation_steps derived from train.global_batch_samples (when set),
    so that the samples per optimizer step do not change with the number of GPUs."""
    total = train_cfg.get("global_batch_samples")
    if total is None:
        return dict(train_cfg)
    per_device = train_cfg.get("per_device_train_batch_size", TABLE1["per_device_train_batch_size"])
    per_step = per_device * world_size
    if total % per_step:
        raise ValueError(f"config train.global_batch_samples {total} is not a multiple of "
                         f"per_device_train_batch_size {per_device} x world size {world_size} = {per_step}")
    accum = total // per_step
    given = train_cfg.get("gradient_accumulation_steps")
    if given is not None and given != accum:
        raise ValueError(f"config train.gradient_accumulation_steps {given} contradicts train.global_batch_samples "
                         f"{total} = {per_device} per device x {world_size} processes x {accum} accumulation; "
                         "set only one of them")
    return {**train_cfg, "gradient_accumulation_steps": accum}


def deepspeed_config(choice: Any) -> str | None:
    if choice is False:
        return None
    if choice is None or choice in ("zero1", "zero2", "zero3"):
        return str(DEEPSPEED_DIR / f"{choice or 'zero1'}.json")
    if not Path(choice).is_file():
        raise InputError(choice, "DeepSpeed config not found", field="train.deepspeed")
    return str(choice)


def zero_stage(ds_path: str | None) -> int | None:
    return read_json(ds_path)["zero_optimization"]["stage"] if ds_path else None


def training_kwargs(train_cfg: dict, epochs: float, output_dir: str) -> dict[str, Any]:
    """TrainingArguments keyword arguments: Table 1, then our engine defaults, then the config."""
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    overrides = {k: v for k, v in train_cfg.items() if k not in OWN}
    for key in overrides:
        if key in RESERVED:
            raise ValueError(f"config train.{key} cannot be set: {RESERVED[key]}")
        if key not in fields:
            raise ValueError(f"config train.{key}: not a TrainingArguments field nor one of "
                             f"{', '.join(OWN)} (typo?)")
    kwargs = {**TABLE1, **ENGINE, **overrides, "output_dir": output_dir, "num_train_epochs": epochs}
    kwargs["deepspeed"] = deepspeed_config(train_cfg.get("deepspeed"))
    return kwargs


def check_hardware(kwargs: dict[str, Any]) -> None:
    """bf16/tf32 need an Ampere-or-newer GPU; say so before any compute, with the config key to change."""
    gpu = torch.cuda.is_available() and not kwargs.get("use_cpu", False)
    where = torch.cuda.get_device_name(0) if gpu else "CPU only (no usable CUDA GPU, or train.use_cpu)"
    if kwargs.get("bf16") and not (gpu and torch.cuda.is_bf16_supported(including_emulation=False)):
        raise RuntimeError(f"train.bf16 is true but this hardware has no bf16 training support ({where}); "
                           "set train.bf16: false (and train.tf32: false on CPU)")
    if kwargs.get("tf32") and not (gpu and torch.cuda.get_device_capability(0)[0] >= 8):
        raise RuntimeError(f"train.tf32 is true but tf32 needs an NVIDIA Ampere or newer GPU ({where}); "
                           "set train.tf32: false")


def load_tokenizer(model_dir: str):
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise InputError(model_dir, f"no usable tokenizer in the model directory ({err})") from err
    require_chat_template(tokenizer, model_dir)
    return tokenizer


def read_conversations(data_path: str) -> list[list[dict]]:
    messages = pl.read_parquet(data_path, columns=["messages"])["messages"].to_list()
    if not messages:
        raise InputError(data_path, "the training set is empty (0 rows): nothing to train on")
    return messages


def fingerprint(model_dir: str, data_path: str, train_cfg: dict, epochs: float) -> str:
    """Identity of a training job: a work directory left by a different job must not be resumed."""
    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file())
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    data = Path(data_path).stat()
    blob = json.dumps([stats, data.st_size, data.st_mtime_ns, train_cfg, epochs], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def prepare(*, model: str, data: str, output: str, workdir: str, train_cfg: dict, epochs: float,
            lora: dict | None = None) -> str:
    """Validate, tokenise, print the plan; returns the args JSON path the workers read. `lora` (LORA's
    keys) trains adapters instead of every weight, merged into the saved model."""
    own = own_options(train_cfg)
    world = own["nodes"] * own["nproc_per_node"]
    # The workers read the resolved config: nproc_per_node "auto" and the derived accumulation fixed here.
    train_cfg = {**resolve_batch(train_cfg, world), "nproc_per_node": own["nproc_per_node"]}
    work = Path(workdir)
    kwargs = training_kwargs(train_cfg, epochs, str(work / "checkpoints"))
    check_hardware(kwargs)
    tokenizer = load_tokenizer(model)
    positions = AutoConfig.from_pretrained(model).max_position_embeddings
    if own["max_length"] > positions:
        raise InputError(model, f"train.max_length {own['max_length']} exceeds the model's "
                                f"max_position_embeddings {positions}", field="train.max_length")
    conversations = read_conversations(data)

    lora = lora_settings(lora)
    key = fingerprint(model, data, {**train_cfg, **({"lora": lora} if lora else {})}, epochs)
    if (work / "fingerprint.json").is_file() and read_json(work / "fingerprint.json")["key"] != key:
        log.info("work directory %s belongs to another job (inputs or config changed): starting over", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json({"key": key}, work / "fingerprint.json")

    tokenized = tokenize_all(tokenizer, conversations, own["max_length"])
    if not tokenized.samples:
        raise InputError(data, f"no sample has a trainable token after formatting (dropped: {tokenized.dropped})")
    rows = with_positions(tokenized.samples) if own["packing"] else tokenized.samples
    write_parquet(pl.DataFrame(rows), work / "data.parquet")

    plan = make_plan(
        model_dir=model, samples=tokenized.samples, dropped=tokenized.dropped, truncated=tokenized.truncated,
        epochs=epochs, packing=own["packing"], world_size=world,
        per_device_batch=kwargs["per_device_train_batch_size"], grad_accum=kwargs["gradient_accumulation_steps"],
        zero_stage=zero_stage(kwargs["deepspeed"]), max_length=own["max_length"],
        gradient_checkpointing=kwargs["gradient_checkpointing"], bf16=kwargs["bf16"],
        max_steps=kwargs.get("max_steps", -1))
    print(plan.describe(), flush=True)
    log.info("%s", plan.describe())
    write_json(plan.to_dict(), work / "plan.json")

    args = {"model": model, "output": output, "workdir": str(work), "train": train_cfg, "epochs": epochs,
            "lora": lora}
    write_json(args, work / "args.json")
    return str(work / "args.json")


# ----------------------------------------------------------------------------------------- worker


class TokenizedData(torch.utils.data.Dataset):
    """One sample a row (with position ids when packing); the collator makes the micro-batch."""

    def __init__(self, path: Path):
        self.frame = pl.read_parquet(path)

    def __len__(self) -> int:
        return self.frame.height

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.frame.row(i, named=True)


class JsonlLog(TrainerCallback):
    """trainer_log.jsonl: one line per logging step (step, loss, learning_rate, grad_norm, tokens_per_s)."""

    def __init__(self, path: Path):
        self.path = path
        self.last: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = (time.perf_counter(), state.num_input_tokens_seen)
        if state.is_world_process_zero:
            self.path.touch()   # exists even when no step was logged (logging_steps > steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now, tokens = time.perf_counter(), state.num_input_tokens_seen
        rate = (tokens - self.last[1]) / max(now - self.last[0], 1e-9)
        self.last = (now, tokens)
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "loss": logs["loss"],
               "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
               "tokens": tokens, "tokens_per_s": round(rate, 1)}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class MarkComplete(TrainerCallback):
    """After every rank has written its part of a checkpoint, mark it COMPLETE: a job killed while
    writing checkpoint N resumes from N-1 instead of crashing on a half-written directory."""

    def on_save(self, args, state, control, **kwargs):
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        if state.is_world_process_zero:
            (Path(args.output_dir) / f"checkpoint-{state.global_step}" / "COMPLETE").touch()


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    done = [p for p in checkpoints.glob("checkpoint-*") if (p / "COMPLETE").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def trim_log(path: Path, step: int) -> None:
    """On resume, drop log lines past the checkpoint: those steps are trained again."""
    if path.is_file():
        rows = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")


def finalize(work: Path, output: Path, summary: dict) -> None:
    """Move the finished model into place in one rename; the work directory goes away after."""
    final = work / "final"
    shutil.copy(work / "trainer_log.jsonl", final / "trainer_log.jsonl")
    write_json({**read_json(work / "plan.json"), **summary}, final / "train_summary.json")
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, output)
    shutil.rmtree(work)


# LoRA's usual shape when a remedy asks for adapters (loop.safety.remedies[].lora overrides any key).
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}


def lora_settings(lora: dict | None) -> dict | None:
    return {**LORA, **lora} if lora is not None else None


def peft_config(lora: dict):
    from peft import LoraConfig
    return LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                      target_modules=lora["target_modules"], task_type="CAUSAL_LM")


def save_model(trainer: Trainer, path: Path, merge: bool) -> None:
    """The trained model as a plain Hugging Face directory; LoRA adapters are merged into the weights
    first, so evaluation reads it like any other round."""
    if not merge:
        trainer.model.config.use_cache = True   # the saved model generates with a cache
        trainer.save_model(str(path))
        return
    model = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
    model.config.use_cache = True
    if trainer.is_world_process_zero():
        model.save_pretrained(str(path))
        trainer.processing_class.save_pretrained(str(path))


def build_trainer(args: dict, callbacks: list[TrainerCallback]) -> Trainer:
    """The Trainer a worker runs: the model, the tokenised data of prepare(), and the collator that makes
    a micro-batch of per_device_train_batch_size samples (laid end to end when packing, else padded)."""
    own = own_options(args["train"])
    work = Path(args["workdir"])
    # TrainingArguments first: it initialises the process group and DeepSpeed (ZeRO-3 needs it before loading).
    training_args = TrainingArguments(**training_kwargs(args["train"], args["epochs"], str(work / "checkpoints")))
    planned = own["nodes"] * own["nproc_per_node"]
    if training_args.world_size != planned:
        # The samples per optimizer step (and so the number of steps) would silently differ from the plan.
        raise RuntimeError(f"planned for {planned} processes (train.nodes x train.nproc_per_node) but "
                           f"{training_args.world_size} are running")
    tokenizer = load_tokenizer(args["model"])
    model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32,
                                                 attn_implementation=own["attn_implementation"])
    # Without a KV cache transformers detects packed sequences from position_ids (culturalign.train.packing).
    model.config.use_cache = False
    if args.get("lora"):
        from peft import get_peft_model
        model = get_peft_model(model, peft_config(args["lora"]))
    collator = flatten_collate if own["packing"] else lambda f: pad_collate(f, tokenizer.pad_token_id)
    return Trainer(model=model, args=training_args, train_dataset=TokenizedData(work / "data.parquet"),
                   data_collator=collator, processing_class=tokenizer, callbacks=callbacks)


def run_worker(args: dict) -> None:
    work, output = Path(args["workdir"]), Path(args["output"])
    checkpoints = work / "checkpoints"
    trainer = build_trainer(args, [JsonlLog(work / "trainer_log.jsonl"), MarkComplete()])
    resume = last_complete_checkpoint(checkpoints) if checkpoints.is_dir() else None
    resumed_step = read_json(resume / "trainer_state.json")["global_step"] if resume else None
    if resume:
        log.info("resuming from %s (global step %d)", resume, resumed_step)
        if trainer.is_world_process_zero():
            trim_log(work / "trainer_log.jsonl", resumed_step)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.accelerator.wait_for_everyone()
    save_model(trainer, work / "final", merge=bool(args.get("lora")))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        finalize(work, output, {"global_step": trainer.state.global_step, "resumed_from_step": resumed_step,
                                "train_loss": result.training_loss, "metrics": result.metrics})
        log.info("model saved: %s", output)


def worker_main(run: Callable[[dict], None], what: str) -> None:
    """The command line of a worker that torchrun starts on every GPU: `--args-json FILE`, logging per rank."""
    parser = argparse.ArgumentParser(description=f"culturalign {what} worker (started by torchrun)")
    parser.add_argument("--args-json", required=True)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rank" + os.environ.get("RANK", "0") + " %(message)s")
    run(read_json(options.args_json))


if __name__ == "__main__":
    worker_main(run_worker, "training")
