"""Preference alignment of a round with TRL (DPO or ORPO), optionally through LoRA adapters (PEFT).

The same two halves and the same launch path as supervised rounds (culturalign.train.trainer and
culturalign.train.launch): `prepare(...)` validates the pairs and writes the work directory in the
launching process; `python -m culturalign.train.preference --args-json FILE` is the worker torchrun
starts on every process (DeepSpeed ZeRO from train.deepspeed, checkpoints marked COMPLETE, resume from the
last complete one, one rename into the output). With LoRA the adapters are merged into the weights before
the model is saved, so evaluation reads a plain Hugging Face directory through the same generation path.

Pairs come from results/data/safety/pairs_{model}.parquet (culturalign.loop.remedies.build_pairs):
`prompt` (messages, ending with a user turn), `chosen`, `rejected` (answer texts).
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import polars as pl
import torch
from transformers import AutoModelForCausalLM

from culturalign.io import InputError, read_json, write_json
from culturalign.train import trainer as sft
from culturalign.train.chat import IGNORE_INDEX, tokenize_conversation

log = logging.getLogger("culturalign.train.preference")

METHODS = ("dpo", "orpo")
# What a preference round adds to the supervised defaults: TRL's usual beta (DPO's KL strength; ORPO's
# odds-ratio weight, lambda in the paper).
PREFERENCE = {"beta": 0.1}


def read_pairs(path: str) -> list[dict]:
    """TRL's conversational preference rows: prompt (messages), chosen and rejected (one assistant turn)."""
    frame = pl.read_parquet(path, columns=["prompt", "chosen", "rejected"])
    if frame.is_empty():
        raise InputError(path, "no preference pair (0 rows): the round has nothing to learn from")
    return [{"prompt": [{"role": m["role"], "content": m["content"]} for m in row["prompt"]],
             "chosen": [{"role": "assistant", "content": row["chosen"]}],
             "rejected": [{"role": "assistant", "content": row["rejected"]}]}
            for row in frame.iter_rows(named=True)]


def prepare(*, method: str, model: str, data: str, output: str, workdir: str, train_cfg: dict, epochs: float,
            preference: dict | None = None, lora: dict | None = None) -> str:
    """Validate (method, tokenizer, pairs, hardware), reset a stale work directory; returns the args JSON."""
    if method not in METHODS:
        raise ValueError(f"preference method must be one of {', '.join(METHODS)}, not {method!r}")
    own = sft.own_options(train_cfg)
    train_cfg = {**sft.resolve_batch(train_cfg, own["nodes"] * own["nproc_per_node"]),
                 "nproc_per_node": own["nproc_per_node"]}
    work = Path(workdir)
    sft.check_hardware(sft.training_kwargs(train_cfg, epochs, str(work / "checkpoints")))
    sft.load_tokenizer(model)
    pairs = read_pairs(data)
    settings = {"method": method, "preference": {**PREFERENCE, **(preference or {})},
                "lora": sft.lora_settings(lora)}
    key = sft.fingerprint(model, data, {**train_cfg, **settings}, epochs)
    if (work / "fingerprint.json").is_file() and read_json(work / "fingerprint.json")["key"] != key:
        log.info("work directory %s belongs to another job (inputs or config changed): starting over", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json({"key": key}, work / "fingerprint.json")
    plan = {"method": method, "pairs": len(pairs), "world_size": own["nodes"] * own["nproc_per_node"],
            "epochs": epochs, **settings}
    write_json(plan, work / "plan.json")
    log.info("preference round: %s on %d pairs, %s", method, len(pairs),
             f"LoRA r={settings['lora']['r']}" if settings["lora"] else "all weights")
    args = {"model": model, "data": data, "output": output, "workdir": str(work), "train": train_cfg,
            "epochs": epochs, **settings}
    write_json(args, work / "args.json")
    return str(work / "args.json")


def config_for(args: dict):
    """DPOConfig / ORPOConfig: the supervised TrainingArguments (Table 1, engine, config), plus beta and
    the sequence length; packing does not apply (TRL pads chosen and rejected itself)."""
    kwargs = sft.training_kwargs(args["train"], args["epochs"], str(Path(args["workdir"]) / "checkpoints"))
    kwargs.update(beta=args["preference"]["beta"], max_length=sft.own_options(args["train"])["max_length"])
    if args["method"] == "dpo":
        from trl import DPOConfig
        return DPOConfig(**kwargs)
    from trl.experimental.orpo import ORPOConfig
    return ORPOConfig(**kwargs)


def build_trainer(args: dict, callbacks: list):
    """The TRL trainer a worker runs. DPO's reference model is the starting model (TRL keeps a frozen copy,
    or with LoRA the same weights with the adapters disabled); ORPO needs none."""
    from datasets import Dataset

    config = config_for(args)   # first: it initialises the process group and DeepSpeed
    planned = sft.own_options(args["train"])
    if config.world_size != planned["nodes"] * planned["nproc_per_node"]:
        raise RuntimeError(f"planned for {planned['nodes'] * planned['nproc_per_node']} processes "
                           f"(train.nodes x train.nproc_per_node) but {config.world_size} are running")
    tokenizer = sft.load_tokenizer(args["model"])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32,
                                                 attn_implementation=planned["attn_implementation"])
    common = dict(model=model, args=config, train_dataset=Dataset.from_list(read_pairs(args["data"])),
                  processing_class=tokenizer, callbacks=callbacks, peft_config=sft.peft_config(args["lora"]) if args["lora"] else None)
    if args["method"] == "dpo":
        from trl import DPOTrainer
        return DPOTrainer(**common)
    from trl.experimental.orpo import ORPOTrainer
    return ORPOTrainer(**common)


def run_worker(args: dict) -> None:
    work, output = Path(args["workdir"]), Path(args["output"])
    checkpoints = work / "checkpoints"
    trainer = build_trainer(args, [sft.JsonlLog(work / "trainer_log.jsonl"), sft.MarkComplete()])
    resume = sft.last_complete_checkpoint(checkpoints) if checkpoints.is_dir() else None
    resumed_step = read_json(resume / "trainer_state.json")["global_step"] if resume else None
    if resume:
        log.info("resuming from %s (global step %d)", resume, resumed_step)
        if trainer.is_world_process_zero():
            sft.trim_log(work / "trainer_log.jsonl", resumed_step)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.accelerator.wait_for_everyone()
    sft.save_model(trainer, work / "final", merge=args["lora"] is not None)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        sft.finalize(work, output, {"global_step": trainer.state.global_step, "resumed_from_step": resumed_step,
                                    "train_loss": result.training_loss, "metrics": result.metrics})
        log.info("model saved: %s", output)


def train_preference(*, method: str, model: str, data: str, output: str, workdir: str, train_cfg: dict,
                     epochs: float, preference: dict | None = None, lora: dict | None = None,
                     log_path: str | None = None) -> None:
    """Prepare here, then train on train.nodes x train.nproc_per_node workers (culturalign.train.launch)."""
    from culturalign.train.launch import launch_command, run

    args_json = prepare(method=method, model=model, data=data, output=output, workdir=workdir,
                        train_cfg=train_cfg, epochs=epochs, preference=preference, lora=lora)
    own = sft.own_options(train_cfg)
    run(launch_command(own["nodes"], own["nproc_per_node"], args_json, os.environ,
                       worker="culturalign.train.preference"), log_path)
    if not Path(output, "config.json").is_file():
        raise RuntimeError(f"training finished but {output} holds no model")


# ------------------------------------------------------------------------------ the measured effect


def answer_logprob(model, tokenizer, prompt: list[dict], answer: str) -> float:
    """Summed log-probability of `answer` as the assistant's reply to `prompt` (answer tokens only)."""
    sample = tokenize_conversation(tokenizer, [*prompt, {"role": "assistant", "content": answer}])
    ids = torch.tensor([sample["input_ids"]])
    labels = torch.tensor(sample["labels"][1:])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    keep = labels != IGNORE_INDEX
    return float(logp[keep].gather(1, labels[keep].unsqueeze(1)).sum())


def mean_margin(model_dir: str, pairs_path: str) -> float:
    """Mean over the pairs of log p(chosen | prompt) - log p(rejected | prompt) under the model in
    `model_dir`: what preference alignment should raise (computed here, independently of TRL)."""
    tokenizer = sft.load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    pairs = read_pairs(pairs_path)
    margins = [answer_logprob(model, tokenizer, p["prompt"], p["chosen"][0]["content"])
               - answer_logprob(model, tokenizer, p["prompt"], p["rejected"][0]["content"]) for p in pairs]
    return sum(margins) / len(margins)


if __name__ == "__main__":
    sft.worker_main(run_worker, "preference")
