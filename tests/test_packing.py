"""Packing: a micro-batch of samples laid end to end gives the same loss and logits as the same samples
padded (no attention across samples)."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from culturalign.train.chat import IGNORE_INDEX, tokenize_all
from culturalign.train.packing import flatten_collate, pad_collate, with_positions

CONVERSATIONS = [
    [{"role": "user", "content": "中国的首都是哪里？"}, {"role": "assistant", "content": "北京。"}],
    [{"role": "user", "content": "介绍春节"}, {"role": "assistant", "content": "春节是中国最重要的传统节日，人们会贴春联、吃饺子。"}],
    [{"role": "system", "content": "你是助手。"}, {"role": "user", "content": "四大发明？"},
     {"role": "assistant", "content": "造纸术、印刷术、火药和指南针。"}, {"role": "user", "content": "谢谢"},
     {"role": "assistant", "content": "不客气！"}],
    [{"role": "user", "content": "Hello, how are you?"}, {"role": "assistant", "content": "Fine, thanks."}],
    [{"role": "user", "content": "长城有多长？"}, {"role": "assistant", "content": "两万多千米。"}],
]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model), tiny_model


def test_packed_layout():
    samples = [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4, 5], "labels": [4, 5]},
               {"input_ids": [6, 7, 8, 9], "labels": [-100, -100, 8, 9]}]
    rows = with_positions(samples)
    assert rows[1] == {"input_ids": [4, 5], "labels": [-100, 5], "position_ids": [0, 1]}
    batch = flatten_collate(rows)   # every sample of the micro-batch, however long: no filling to a length
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5, 6, 7, 8, 9]]
    assert batch["labels"].tolist() == [[-100, 2, 3, -100, 5, -100, -100, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_unpacked(tiny, attn):
    tokenizer, path = tiny
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn, dtype=torch.float32).eval()
    model.config.use_cache = False  # as in training: packed sequences are only detected without a cache
    samples = tokenize_all(tokenizer, CONVERSATIONS, max_length=256).samples
    lengths = [len(s["input_ids"]) for s in samples]

    with torch.no_grad():
        padded_batch = pad_collate(samples, tokenizer.pad_token_id)
        padded = model(**padded_batch)
        flat_batch = flatten_collate(with_positions(samples))
        flat = model(**flat_batch)
    torch.testing.assert_close(flat.loss, padded.loss, rtol=1e-4, atol=0)
    # Per-sample logits match too: attention is isolated within each sample of a pack.
    offsets = torch.tensor([0] + lengths).cumsum(0)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(flat.logits[0, offsets[i]:offsets[i] + n], padded.logits[i, :n], rtol=1e-4, atol=1e-5)
    # Sanity: the same row attending across samples (no position ids, or a KV cache) gives another loss.
    with torch.no_grad():
        no_positions = model(input_ids=flat_batch["input_ids"], labels=flat_batch["labels"])
        with_cache = model(**flat_batch, use_cache=True)
    second = slice(offsets[1].item(), offsets[2].item())  # sample 1 follows sample 0 in the row
    assert flat_batch["position_ids"][0, second.start] == 0
    for leaky in (no_positions, with_cache):
        assert (leaky.logits[0, second] - flat.logits[0, second]).abs().max() > 1e-2


def test_pad_to_max(tiny):
    tokenizer, _ = tiny
    samples = tokenize_all(tokenizer, CONVERSATIONS[:2], max_length=256).samples
    batch = pad_collate(samples, tokenizer.pad_token_id, pad_to=128)
    assert batch["input_ids"].shape == (2, 128)
    assert batch["attention_mask"].sum().item() == sum(len(s["input_ids"]) for s in samples)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
