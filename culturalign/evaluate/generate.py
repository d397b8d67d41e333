"""Answers of a model to evaluation items: chat template applied, history passed as messages, greedy.

Two engines produce the same table (id, prompt, answer, prompt_tokens, answer_tokens, latency_s):
- transformers: batched `generate` with left padding and the KV cache; items are sorted by prompt
  length so each batch pads little, and the rows are put back in input order at the end;
- vLLM (when installed and a GPU is present, or asked for): continuous batching over the same token ids.
Both engines tokenize with the model's own chat template here, so they see identical prompts.
`latency_s` is the wall time of the batch an answer was generated in (the whole run for vLLM).

This is the one local Hugging Face generation path: the `hf` judge (culturalign.llm) loads its model
with `load_chat_model` and answers with `generate_batched` too.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import time

import polars as pl
from tqdm import tqdm

from culturalign.io import InputError

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


def require_chat_template(tokenizer, model_dir: str) -> None:
    """The one chat-template check: conversations are formatted with the model's own template."""
    if not tokenizer.chat_template:
        raise InputError(model_dir, "the tokenizer has no chat template; conversations need one "
                                    "(use an instruct/chat model, or set tokenizer.chat_template)")


def chat_prompts(tokenizer, conversations: list[list[dict]]) -> list[str]:
    """Each conversation in the chat template, ready for the assistant's next turn."""
    return [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in conversations]


def load_tokenizer(model_dir: str):
    """The model's tokenizer, checked for a chat template, padding on the left (decoder-only: new tokens
    must follow the prompt directly) with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    require_chat_template(tokenizer, model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_chat_model(model_dir: str):
    """(model in eval mode on the GPU when there is one, tokenizer as `load_tokenizer` gives it)."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto").to(device).eval(), tokenizer


def _stop_ids(model, tokenizer) -> set[int]:
    eos = model.generation_config.eos_token_id if model is not None else None
    ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id, tokenizer.pad_token_id}
    return {i for i in ids if i is not None}


def _answer_length(tokens: list[int], stop: set[int]) -> int:
    """Generated tokens before the first stop token (EOS, or the padding after an early finish)."""
    return next((k for k, tok in enumerate(tokens) if tok in stop), len(tokens))


def generate_batched(model, tokenizer, encoded: list[list[int]], *, max_new_tokens: int, batch_size: int,
                     temperature: float | None = None, seed: int = 0, progress: bool = True) -> list[dict]:
    """Answers to token-id prompts with a loaded model, in the prompts' order: {answer, prompt_tokens,
    answer_tokens, latency_s}. Greedy unless `temperature` is given (then sampled, seeded by `seed`).

    Prompts are batched longest first (similar lengths pad little; an OOM shows at once), left padded.
    """
    import torch

    sampling: dict = {"do_sample": False, "num_beams": 1}
    if temperature:
        sampling = {"do_sample": True, "temperature": temperature}
        torch.manual_seed(seed)
    stop = _stop_ids(model, tokenizer)
    order = sorted(range(len(encoded)), key=lambda k: -len(encoded[k]))
    rows: dict[int, dict] = {}
    for start in tqdm(range(0, len(order), batch_size), desc="generate", unit="batch", disable=not progress):
        batch = order[start:start + batch_size]
        inputs = tokenizer.pad({"input_ids": [encoded[k] for k in batch]}, return_tensors="pt").to(model.device)
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id, **sampling)
        took = time.perf_counter() - began
        for row, k in enumerate(batch):
            new = out[row, inputs["input_ids"].shape[1]:].tolist()
            new = new[:_answer_length(new, stop)]
            rows[k] = {"answer": tokenizer.decode(new, skip_special_tokens=True).strip(),
                       "prompt_tokens": len(encoded[k]), "answer_tokens": len(new), "latency_s": took}
    return [rows[k] for k in range(len(encoded))]


def encode(tokenizer, prompts: list[str]) -> list[list[int]]:
    # The chat template writes the BOS itself, so no special tokens are added again.
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


def _vllm(model_dir: str, tokenizer, encoded: list[list[int]], max_new_tokens: int) -> list[dict]:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_dir)
    began = time.perf_counter()
    outputs = llm.generate([{"prompt_token_ids": ids} for ids in encoded],
                           SamplingParams(temperature=0.0, max_tokens=max_new_tokens), use_tqdm=True)
    took = time.perf_counter() - began
    stop = _stop_ids(None, tokenizer)
    rows = []
    for ids, out in zip(encoded, outputs):
        new = list(out.outputs[0].token_ids)
        new = new[:_answer_length(new, stop)]
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
