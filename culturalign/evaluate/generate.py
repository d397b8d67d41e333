"""Answers of a model to evaluation items: chat template applied, history passed as messages, greedy.

Two engines produce the same table (id, prompt, answer, prompt_tokens, answer_tokens, latency_s):
- transformers: batched `generate` with left padding and the KV cache; items are sorted by prompt
  length so each batch pads little, and the rows are put back in input order at the end;
- vLLM (when installed and a GPU is present, or asked for): continuous batching over the same token ids.
Both engines tokenize with the model's own chat template here, so they see identical prompts.
`latency_s` is the wall time of the batch an answer was generated in (the whole run for vLLM).

The transformers engine is culturalign.hf, the one local Hugging Face generation path: the `hf` judge
(culturalign.llm) loads its model and answers with it too.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import time

import polars as pl

from culturalign.hf import (answer_length, chat_prompts, encode, generate_batched, load_chat_model, load_tokenizer,
                            stop_ids)

log = logging.getLogger(__name__)

COLUMNS = {"id": pl.String, "prompt": pl.String, "answer": pl.String, "prompt_tokens": pl.Int64,
           "answer_tokens": pl.Int64, "latency_s": pl.Float64}


def messages_of(item: dict) -> list[dict]:
    """The conversation sent to the model: the item's history, then the question as the last user turn."""
    return [*item.get("history", []), {"role": "user", "content": item["question"]}]


def choose_backend(backend: str = "auto") -> str:
    """vllm when asked for, or on `auto` when vllm is importable and a GPU is present; else transformers."""
    if backend not in ("auto", "vllm", "transformers"):
        raise ValueError(f"generation backend must be auto, vllm or transformers, not {backend!r}")
    if backend != "auto":
        return backend
    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    import torch
    return "vllm" if torch.cuda.is_available() else "transformers"


def _vllm(model_dir: str, tokenizer, encoded: list[list[int]], max_new_tokens: int) -> list[dict]:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_dir)
    began = time.perf_counter()
    outputs = llm.generate([{"prompt_token_ids": ids} for ids in encoded],
                           SamplingParams(temperature=0.0, max_tokens=max_new_tokens), use_tqdm=True)
    took = time.perf_counter() - began
    stop = stop_ids(None, tokenizer)
    rows = []
    for ids, out in zip(encoded, outputs):
        new = list(out.outputs[0].token_ids)
        new = new[:answer_length(new, stop)]
        rows.append({"answer": tokenizer.decode(new, skip_special_tokens=True).strip(),
                     "prompt_tokens": len(ids), "answer_tokens": len(new), "latency_s": took})
    return rows


def generate(model_dir: str, items: list[dict], *, max_new_tokens: int, batch_size: int,
             backend: str = "auto") -> pl.DataFrame:
    """Greedy answers of the model in `model_dir` to `items`, one row per item, in the items' order."""
    if not items:
        return pl.DataFrame(schema=COLUMNS)
    engine = choose_backend(backend)
    log.info("generating %d answers with %s (batch %d, max_new_tokens %d)", len(items), engine, batch_size,
             max_new_tokens)
    if engine == "vllm":
        tokenizer = load_tokenizer(model_dir)
        prompts = chat_prompts(tokenizer, [messages_of(it) for it in items])
        rows = _vllm(model_dir, tokenizer, encode(tokenizer, prompts), max_new_tokens)
    else:
        model, tokenizer = load_chat_model(model_dir)
        prompts = chat_prompts(tokenizer, [messages_of(it) for it in items])
        rows = generate_batched(model, tokenizer, encode(tokenizer, prompts), max_new_tokens=max_new_tokens,
                                batch_size=batch_size)
    return pl.DataFrame([{"id": it["id"], "prompt": p, **r} for it, p, r in zip(items, prompts, rows)],
                        schema=COLUMNS)


def with_items(answers: pl.DataFrame, items: list[dict]) -> pl.DataFrame:
    """The generation table plus an `item` column (the item as JSON), so scoring needs no benchmark file."""
    return answers.with_columns(pl.Series("item", [json.dumps(it, ensure_ascii=False) for it in items], pl.String))


def read_generations(path: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """(items, answers) of a results/generations/{model}/{evalset}.parquet written with `with_items`."""
    df = pl.read_parquet(path, columns=["item", "answer"])
    return [json.loads(s) for s in df["item"]], df["answer"].to_list()
