"""Padding-free batching: the samples of one micro-batch are laid end to end in a single row, with
position ids restarting at 0 for every sample and no attention mask.

A micro-batch holds `per_device_train_batch_size` SAMPLES whether packing is on or off; packing only
removes the padding (it does not fill a row up to max_length). So an optimizer step always sees
per_device x gradient_accumulation x world_size samples, and packed and unpacked runs of the same data
take the same number of optimizer steps with the same learning-rate schedule (tests/test_train.py).

The row is the input format transformers recognises as packed sequences (5.x, `masking_utils.
find_packed_sequence_indices`): flash-attention kernels get per-sample cumulative lengths (cu_seqlens)
from the position ids, and sdpa/eager/flex get a block-diagonal causal mask built from them, so no
token ever attends to another sample. The loss is the mean over trainable tokens either way, so a
packed batch gives the same loss as the same samples padded (tests/test_packing.py).

Pitfall (transformers 5.23): packed detection only runs without a KV cache. A model whose config has
`use_cache=True` builds a DynamicCache even in training mode, and then sdpa/eager silently attend
across samples. Training therefore sets `model.config.use_cache = False` (culturalign.train.trainer).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from culturalign.train.chat import IGNORE_INDEX


def with_positions(samples: Sequence[dict[str, list[int]]]) -> list[dict[str, list[int]]]:
    """Samples ready to be laid end to end: per-sample position ids, and the first label ignored.

    In a flat row the model would otherwise learn to predict a sample's first token from the end of
    the previous sample; unpadded training never uses that label either (the loss shifts labels by one).
    """
    return [{"input_ids": s["input_ids"], "labels": [IGNORE_INDEX] + s["labels"][1:],
             "position_ids": list(range(len(s["input_ids"])))} for s in samples]


def flatten_collate(features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    """Samples with position ids -> one row of shape (1, total tokens), no padding."""
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
