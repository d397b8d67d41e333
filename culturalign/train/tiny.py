"""The tiny demo model: a randomly initialised Llama-architecture model of a few million parameters
and a byte-level BPE tokenizer trained on the demo texts, saved as a normal Hugging Face directory.

Everything is built locally (no download), so the whole workflow runs offline on a laptop CPU. The
tokenizer carries a Llama-3 style chat template, so the demo exercises the same formatting and
loss-masking code path as a real Llama-3 model.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS, EOT, PAD = "<|begin_of_text|>", "<|eot_id|>", "<|pad|>"
START_HEADER, END_HEADER = "<|start_header_id|>", "<|end_header_id|>"
SPECIAL_TOKENS = [BOS, START_HEADER, END_HEADER, EOT, PAD]

# Llama-3's template, shortened (no tools, no date header). The {% generation %} markers let
# `apply_chat_template(..., return_assistant_tokens_mask=True)` (and TRL) find assistant tokens;
# culturalign.train.chat does not need them but checks that it agrees with them.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (as GPT-2/Llama-3): every string is encodable, Chinese included, no <unk>."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Offsets must map to characters of the input for the chat loss mask (culturalign.train.chat).
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOT, pad_token=PAD,
        additional_special_tokens=[START_HEADER, END_HEADER], chat_template=CHAT_TEMPLATE,
        model_max_length=None,
    )


def build_tiny(out_dir: str, texts: Iterable[str], *, vocab_size: int = 2000, hidden_size: int = 64,
               layers: int = 2, heads: int = 4, intermediate_size: int = 128,
               max_position_embeddings: int = 1024, seed: int = 0) -> None:
    """Train the tokenizer on `texts`, build a seeded random Llama model, save both to `out_dir`."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("build_tiny: no non-empty text to train the tokenizer on")
    tokenizer = train_tokenizer(texts, vocab_size)
    tokenizer.model_max_length = max_position_embeddings
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
