"""Loss masking: labels are exactly the assistant answers (every turn, end-of-turn token included)."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from culturalign.train.chat import IGNORE_INDEX, TemplateError, tokenize_all, tokenize_conversation

# Meta-Llama-3-8B-Instruct's template, verbatim (BOS written by the template on the first turn).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Meta-Llama-3.1-Instruct's template without its tool branches: a system block with dates is always written.
LLAMA31_TEMPLATE = """{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

DIALOGUE = [
    {"role": "system", "content": "你是一个乐于助人的助手。"},
    {"role": "user", "content": "中国的首都是哪里？"},
    {"role": "assistant", "content": "中国的首都是北京。"},
    {"role": "user", "content": "长城有多长？"},
    {"role": "assistant", "content": "长城全长两万多千米。"},
]
ANSWERS = ["中国的首都是北京。<|eot_id|>", "长城全长两万多千米。<|eot_id|>"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def trainable_runs(tokenizer, sample) -> list[str]:
    """Decoded contiguous runs of trainable tokens."""
    runs, current = [], []
    for token, label in zip(sample["input_ids"], sample["labels"]):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.decode(run) for run in runs]


@pytest.mark.parametrize("template", [None, LLAMA3_TEMPLATE, LLAMA31_TEMPLATE], ids=["tiny", "llama3", "llama3.1"])
def test_labels_are_exactly_the_assistant_turns(tokenizer, template):
    if template is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
        tokenizer.chat_template = template
    sample = tokenize_conversation(tokenizer, DIALOGUE)
    assert trainable_runs(tokenizer, sample) == ANSWERS
    assert tokenizer.decode(sample["input_ids"]) == tokenizer.apply_chat_template(DIALOGUE, tokenize=False)
    assert sample["input_ids"].count(tokenizer.bos_token_id) == 1


def test_mask_agrees_with_generation_markers(tokenizer):
    """The tiny template marks answers with {% generation %}; transformers' mask must match ours."""
    ours = tokenize_conversation(tokenizer, DIALOGUE)
    theirs = tokenizer.apply_chat_template(DIALOGUE, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert theirs["input_ids"] == ours["input_ids"]
    assert theirs["assistant_masks"] == [int(label != IGNORE_INDEX) for label in ours["labels"]]


def test_truncation_drops_samples_without_trainable_tokens(tokenizer):
    short = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
    long_prompt = [{"role": "user", "content": "长城" * 200}, {"role": "assistant", "content": "是的。"}]
    prompt_len = len(tokenizer.apply_chat_template(long_prompt[:1], add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"])
    out = tokenize_all(tokenizer, [short, long_prompt, DIALOGUE], max_length=prompt_len)
    assert out.dropped == {"no_trainable_token_after_truncation": 1}
    assert out.truncated == 1
    assert len(out.samples) == 2 and all(len(s["input_ids"]) <= prompt_len for s in out.samples)
    # Truncating mid-answer keeps the answer's first tokens trainable.
    cut = tokenize_all(tokenizer, [long_prompt], max_length=prompt_len + 1)
    assert cut.dropped == {} and sum(label != IGNORE_INDEX for label in cut.samples[0]["labels"]) == 1
    # A conversation without an assistant turn is never silently trained on.
    assert tokenize_all(tokenizer, [short[:1]], max_length=64).dropped == {"no_assistant_turn": 1}


def test_template_rewriting_history_is_refused(tokenizer):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    # Renders only the last turn in full (like templates that strip earlier reasoning): not prefix-stable.
    tokenizer.chat_template = ("{% for m in messages %}{% if loop.last %}{{ m['content'] }}{% else %}"
                               "{{ m['role'] }}{% endif %}{% endfor %}")
    with pytest.raises(TemplateError, match="turn 1"):
        tokenize_conversation(tokenizer, DIALOGUE[1:3])
