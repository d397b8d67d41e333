"""Chat formatting and loss masking: a conversation becomes token ids and labels, with the loss only
on assistant tokens (every assistant turn of a multi-turn dialogue, its end-of-turn token included).

Works for any tokenizer with a chat template, without special markers in the template: the
conversation is rendered once in full and, for each assistant turn, the text before it (rendered
with the generation prompt) and the text through it; the characters between the two are that turn's
answer. The full text is tokenised once, with character offsets, and a token is trainable when it
overlaps an answer span, so BPE merges across the boundaries cannot shift the mask.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tqdm import tqdm

IGNORE_INDEX = -100


class TemplateError(ValueError):
    """The chat template does not render conversations as a sequence of growing prefixes."""


@dataclass
class Tokenized:
    samples: list[dict[str, list[int]]]          # {"input_ids", "labels"}
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> count
    truncated: int = 0


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the [start, end) character span of every assistant turn."""
    render = lambda msgs, gen: tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    text = render(messages, False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, through = render(messages[:i], True), render(messages[: i + 1], False)
        if not (text.startswith(through) and through.startswith(before)):
            raise TemplateError(
                f"chat template does not render turn {i} as a prefix of the whole conversation "
                "(a template that rewrites earlier turns cannot be masked by prefixes)")
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_conversation(tokenizer, messages: list[dict]) -> dict[str, list[int]]:
    """input_ids and labels (IGNORE_INDEX outside assistant answers) of the whole conversation."""
    text, spans = assistant_spans(tokenizer, messages)
    # The template writes BOS itself; add_special_tokens=False keeps it from being added twice.
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    labels = [
        token if any(start < s_end and end > s_start for s_start, s_end in spans) else IGNORE_INDEX
        for token, (start, end) in zip(ids, enc["offset_mapping"])
    ]
    return {"input_ids": ids, "labels": labels}


def tokenize_all(tokenizer, conversations: Iterable[list[dict]], max_length: int) -> Tokenized:
    """Tokenise and truncate every conversation; drop (and count) those with no trainable token."""
    out = Tokenized(samples=[])
    for messages in tqdm(conversations, desc="tokenizing", unit="conv", mininterval=10):
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        sample = tokenize_conversation(tokenizer, messages)
        truncated = len(sample["input_ids"]) > max_length
        if truncated:
            out.truncated += 1
            sample = {key: value[:max_length] for key, value in sample.items()}
        if all(label == IGNORE_INDEX for label in sample["labels"]):
            reason = "no_trainable_token_after_truncation" if truncated else "no_assistant_turn"
            out.dropped[reason] = out.dropped.get(reason, 0) + 1
            continue
        out.samples.append(sample)
    return out
