"""Padding-free packing: samples are concatenated into packs of at most max_length tokens, with
position ids restarting at 0 for every sample, and no attention mask.

That is the input format transformers recognises as packed sequences (5.x, `masking_utils.
find_packed_sequence_indices`): flash-attention kernels get per-sample cumulative lengths from the
position ids, and sdpa/eager/flex get a block-diagonal causal mask built from them, so no token ever
attends to another sample. The loss is the mean over trainable tokens either way, so a packed batch
gives the same loss as the same samples padded (tests/test_packing.py).

Pitfall (transformers 5.23): packed detection only runs without a KV cache. A model whose config has
`use_cache=True` builds a DynamicCache even in training mode, and then sdpa/eager silently attend
across samples. Training therefore sets `model.config.use_cache = False` (culturalign.train).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from culturalign.chat import IGNORE_INDEX


def pack(samples: Sequence[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Greedy packing in the given order (the data is shuffled upstream; the Trainer shuffles packs).

    Each sample must already fit max_length (culturalign.chat truncates). The first label of every
    sample is ignored: in a flat row the model would otherwise learn to predict a sample's first token
    from the end of the previous one; unpacked training never uses that label either.
    """
    packs: list[dict[str, list[int]]] = []
    current = {"input_ids": [], "labels": [], "position_ids": []}
    for sample in samples:
        n = len(sample["input_ids"])
        if n > max_length:
            raise ValueError(f"sample of {n} tokens exceeds max_length {max_length}; truncate before packing")
        if current["input_ids"] and len(current["input_ids"]) + n > max_length:
            packs.append(current)
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += sample["input_ids"]
        current["labels"] += [IGNORE_INDEX] + sample["labels"][1:]
        current["position_ids"] += list(range(n))
    if current["input_ids"]:
        packs.append(current)
    return packs


def flatten_collate(features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    """Packs (or single samples with position ids) -> one row of shape (1, total), no padding."""
    def cat(key: str) -> torch.Tensor:
        return torch.tensor([t for f in features for t in f[key]], dtype=torch.long).unsqueeze(0)

    return {"input_ids": cat("input_ids"), "labels": cat("labels"), "position_ids": cat("position_ids")}


def pad_collate(features: list[dict[str, list[int]]], pad_token_id: int,
                pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Right padding to the longest sample (dynamic) or to `pad_to` (the FastChat-era pad-to-max)."""
    width = pad_to or max(len(f["input_ids"]) for f in features)
    def pad(key: str, value: int) -> torch.Tensor:
        return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features], dtype=torch.long)

    mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features])
    return {"input_ids": pad("input_ids", pad_token_id), "labels": pad("labels", IGNORE_INDEX), "attention_mask": mask}
