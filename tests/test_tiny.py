"""The tiny demo model: builds offline, reloads as a normal HF directory, is seeded, has a chat template."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from culturalign.train.tiny import build_tiny

TEXTS = ["中国的首都是北京。长城是中国古代的军事防御工程。", "The quick brown fox jumps over the lazy dog."] * 30


def test_build_tiny_reloads_and_formats_chat(tmp_path: Path):
    build_tiny(str(tmp_path / "a"), TEXTS, vocab_size=400, hidden_size=32, layers=1, heads=2,
               intermediate_size=64, max_position_embeddings=128, seed=3)
    assert (tmp_path / "a" / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(tmp_path / "a")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    assert model.config.num_hidden_layers == 1 and model.config.hidden_size == 32
    assert model.config.vocab_size == len(tok) <= 400
    assert model.config.max_position_embeddings == 128
    text = tok.apply_chat_template([{"role": "user", "content": "你好"}, {"role": "assistant", "content": "您好！"}],
                                   tokenize=False)
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n你好<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n您好！<|eot_id|>")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: Chinese round-trips, no <unk>
    assert tok.convert_ids_to_tokens(ids[0]) == "<|begin_of_text|>"
    assert tok.eos_token == "<|eot_id|>" and tok.pad_token_id is not None

    # Same seed -> same weights; another seed -> different weights.
    build_tiny(str(tmp_path / "b"), TEXTS, vocab_size=400, hidden_size=32, layers=1, heads=2,
               intermediate_size=64, max_position_embeddings=128, seed=3)
    build_tiny(str(tmp_path / "c"), TEXTS, vocab_size=400, hidden_size=32, layers=1, heads=2,
               intermediate_size=64, max_position_embeddings=128, seed=4)
    weights = [AutoModelForCausalLM.from_pretrained(tmp_path / n).model.layers[0].mlp.up_proj.weight for n in "bc"]
    assert torch.equal(model.model.layers[0].mlp.up_proj.weight, weights[0])
    assert not torch.equal(weights[0], weights[1])
