"""A local Hugging Face chat model: loading it, its chat template, batched generation.

Shared plumbing (imports no stage): training checks the chat template with `require_chat_template`, the
evaluation stage generates its answers with `generate_batched`, and the `hf` backend of the LLM client
(culturalign.llm, used by judges and by the data stage's refinement) answers with it too, so there is one
local generation path.
"""
from __future__ import annotations

import time

from tqdm import tqdm

from culturalign.io import InputError


def require_chat_template(tokenizer, model_dir: str) -> None:
    """The one chat-template check: conversations are formatted with the model's own template."""
    if not tokenizer.chat_template:
        raise InputError(model_dir, "the tokenizer has no chat template; conversations need one "
                                    "(use an instruct/chat model, or set tokenizer.chat_template)")


def chat_prompts(tokenizer, conversations: list[list[dict]]) -> list[str]:
    """Each conversation in the chat template, ready for the assistant's next turn."""
    return [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in conversations]


def encode(tokenizer, prompts: list[str]) -> list[list[int]]:
    # The chat template writes the BOS itself, so no special tokens are added again.
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


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


def stop_ids(model, tokenizer) -> set[int]:
    """The token ids that end an answer: the model's EOS ids (when a model is given), the tokenizer's EOS
    and pad."""
    eos = model.generation_config.eos_token_id if model is not None else None
    ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id, tokenizer.pad_token_id}
    return {i for i in ids if i is not None}


def answer_length(tokens: list[int], stop: set[int]) -> int:
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
    stop = stop_ids(model, tokenizer)
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
            new = new[:answer_length(new, stop)]
            rows[k] = {"answer": tokenizer.decode(new, skip_special_tokens=True).strip(),
                       "prompt_tokens": len(encoded[k]), "answer_tokens": len(new), "latency_s": took}
    return [rows[k] for k in range(len(encoded))]
