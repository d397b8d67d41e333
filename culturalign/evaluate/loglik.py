"""Multiple choice by log-likelihood, the way lm-evaluation-harness scores MMLU and CMMLU.

Each option is the continuation " A", " B", ... after the (k-shot) prompt; the chosen option is the one
with the highest log-probability. Nothing is generated, so nothing needs parsing. Tokenization follows
lm-evaluation-harness (HFLM, causal): the context is encoded with the tokenizer's own special tokens,
the continuation is what encoding context + continuation adds after the context's tokens, and a context
longer than the model's window keeps its last tokens. Options share one forward pass when their inputs
coincide or one is a prefix of another: when every option letter is one token (usual for " A".." H") the
input is the context itself and the last position's logits score all options at once; a tokenizer that
splits some letters (" " + "A") still needs one pass.

No chat template is applied (lm-evaluation-harness's default for these tasks).
Batches are right-padded (positions of real tokens are unchanged) and sorted by length. Prompts that share
a long token prefix (the description and worked examples of a k-shot prompt, the same for every question
of a subject) compute it once and reuse its key/value cache for each batch of their remaining tokens.
"""
from __future__ import annotations

import logging
from pathlib import Path

import yaml

from culturalign.util import package_data

log = logging.getLogger(__name__)
LETTERS = "ABCDEFGH"
DELIMITER = " "  # lm-evaluation-harness's target_delimiter between prompt and option letter


# ---------------------------------------------------------------- prompts (lm-evaluation-harness's templates)

def _block(item: dict, answer_cue: str) -> str:
    """Question, lettered options (unless the question already shows them), then the answer cue."""
    lines = [item["question"].strip()]
    if not item.get("options_in_question"):
        lines += [f"{LETTERS[k]}. {text}" for k, text in enumerate(item["options"])]
    return "\n".join(lines) + "\n" + answer_cue


def _few_shot(description: str, item: dict, answer_cue: str) -> str:
    shots = [_block(s, answer_cue) + DELIMITER + LETTERS[s["answer"]] for s in item.get("shots", [])]
    return description + "".join(s + "\n\n" for s in shots) + _block(item, answer_cue)


def mmlu_prompt(item: dict) -> str:
    """lm-evaluation-harness's mmlu (default) prompt: description, k worked examples, the question."""
    subject = " ".join(item["subject"].split("_"))
    return _few_shot(f"The following are multiple choice questions (with answers) about {subject}.\n\n", item,
                     "Answer:")


def cmmlu_subject_names() -> dict[str, str]:
    """CMMLU file name -> the Chinese subject name lm-evaluation-harness's cmmlu prompts use."""
    return yaml.safe_load(Path(package_data("evaluate/cmmlu_subjects.yaml")).read_text(encoding="utf-8"))


def cmmlu_prompt(item: dict, names: dict[str, str] | None = None) -> str:
    """lm-evaluation-harness's cmmlu prompt (Chinese description, "答案：" cue); also fits CHiSafetyBench items."""
    names = cmmlu_subject_names() if names is None else names
    subject = names.get(item["subject"], item["subject"])
    description = f"以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n"
    return _few_shot(description, item, "答案：")


def build_prompts(items: list[dict], style: str) -> list[str]:
    """Prompts of multiple-choice items in `style` `mmlu` (English) or `cmmlu` (Chinese)."""
    if style == "mmlu":
        return [mmlu_prompt(it) for it in items]
    if style == "cmmlu":
        names = cmmlu_subject_names()
        return [cmmlu_prompt(it, names) for it in items]
    raise ValueError(f"prompt style must be mmlu or cmmlu, not {style!r}")


# ---------------------------------------------------------------- scoring

def _load(model) -> tuple:
    """(model, tokenizer) from a directory, or as given."""
    if not isinstance(model, (str, Path)):
        return model
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = AutoModelForCausalLM.from_pretrained(str(model), dtype="auto").to(device)
    return loaded.eval(), AutoTokenizer.from_pretrained(str(model))


def _window(model) -> int | None:
    return getattr(model.config, "max_position_embeddings", None)


def _requests(tokenizer, prompts: list[str], n_options: list[int]) -> list[tuple[list[int], list[list[int]]]]:
    """Per prompt: (context tokens, continuation tokens of each option), split as lm-evaluation-harness does:
    trailing whitespace moves to the continuation; the continuation is what encoding context + continuation
    adds after the context's tokens. All strings are encoded in one batch call (the fast tokenizer's threads)."""
    bad = [n for n in n_options if not 2 <= n <= len(LETTERS)]
    if bad:
        raise ValueError(f"a question needs 2-{len(LETTERS)} options, not {bad[0]}")
    contexts = [p.rstrip() for p in prompts]
    wholes = [c + p[len(c):] + DELIMITER + LETTERS[k] for c, p, n in zip(contexts, prompts, n_options)
              for k in range(n)]
    encoded = tokenizer(contexts + wholes)["input_ids"]
    ctxs, rest = encoded[:len(contexts)], iter(encoded[len(contexts):])
    return [(ctx, [next(rest)[len(ctx):] for _ in range(n)]) for ctx, n in zip(ctxs, n_options)]


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    return next((k for k in range(n) if a[k] != b[k]), n)


def _prefix_groups(seqs: list[list[int]], wanted: list[list[tuple[int, int]]],
                   min_shared: int) -> list[tuple[int, list[int]]]:
    """(shared prefix length, sequence indices): sequences in token order, grouped while they share at least
    `min_shared` leading tokens that come before every position to score (k-shot prompts of one subject share
    their description and worked examples). Prefix length 0 = no sharing."""
    groups: list[tuple[int, list[int]]] = []
    for k in sorted(range(len(seqs)), key=lambda k: seqs[k]):
        first = min(p for p, _ in wanted[k])
        if groups:
            shared, members = groups[-1]
            shared = min(shared, _common(seqs[members[0]], seqs[k]), first)
            if shared >= min_shared:
                groups[-1] = (shared, members + [k])
                continue
        groups.append((first, [k]))
    return [(shared if len(members) > 1 else 0, members) for shared, members in groups]


def _score_sequences(model, pad_id: int, seqs: list[list[int]], wanted: list[list[tuple[int, int]]],
                     batch_size: int, min_shared: int) -> list[list[float]]:
    """Log-probabilities of token t at position p (the logits after token p) for each (p, t) in wanted[i].

    Sequences sharing a long prefix run it once and reuse its key/value cache (causal attention: the
    suffix sees exactly what it would see in one pass). Batches are right-padded and sorted longest first;
    only the needed positions' logits are computed (`logits_to_keep`)."""
    import copy

    import torch

    device = next(model.parameters()).device
    out: list[list[float]] = [[] for _ in seqs]
    for shared, members in _prefix_groups(seqs, wanted, min_shared):
        prefix = None
        if shared:
            with torch.inference_mode():
                prefix = model(input_ids=torch.tensor([seqs[members[0]][:shared]], device=device),
                               use_cache=True).past_key_values
        order = sorted(members, key=lambda k: -len(seqs[k]))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(len(seqs[k]) for k in batch) - shared
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
            for row, k in enumerate(batch):
                ids[row, :len(seqs[k]) - shared] = torch.tensor(seqs[k][shared:])
                mask[row, :len(seqs[k])] = 1
            past = None
            if prefix is not None:
                past = copy.deepcopy(prefix)
                past.batch_repeat_interleave(len(batch))
            positions = sorted({p - shared for k in batch for p, _ in wanted[k]})
            column = {p + shared: c for c, p in enumerate(positions)}
            with torch.inference_mode():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), past_key_values=past,
                               use_cache=past is not None, logits_to_keep=torch.tensor(positions, device=device)).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for row, k in enumerate(batch):
                out[k] = [logprobs[row, column[p], t].item() for p, t in wanted[k]]
    return out


def loglik_scores(model, prompts: list[str], n_options: list[int], *, batch_size: int = 8,
                  min_shared: int = 64) -> list[list[float]]:
    """Log-probability of each option letter (" A", " B", ...) after each prompt.

    `model` is a model directory or a loaded `(model, tokenizer)` pair; `n_options[i]` is prompt i's number of
    options. Equals lm-evaluation-harness's loglikelihood of the same (prompt, " X") requests. Prompts that
    share at least `min_shared` leading tokens (a k-shot prefix) compute that prefix once; 0 turns this off.
    """
    model, tokenizer = _load(model)
    window = _window(model)
    seqs: list[list[int]] = []
    wanted: list[list[tuple[int, int]]] = []
    parts = []  # per prompt, per option: (sequence index, indices of its log-probs in wanted[sequence])
    truncated = 0
    for ctx, conts in _requests(tokenizer, prompts, n_options):
        options = [(ctx + cont[:-1], [(len(ctx) - 1 + j, t) for j, t in enumerate(cont)]) for cont in conts]
        hosts: list[tuple[int, list[int], int]] = []  # this prompt's sequences: (index, tokens, how many cut)
        prompt_parts: list = [None] * len(options)
        for k in sorted(range(len(options)), key=lambda k: -len(options[k][0])):
            seq, want = options[k]
            # Causal attention: an option whose input is a prefix of another option's is scored in that pass
            # (" A" -> [" ", "A"] and " B" -> [" B"] both need only the context + " "); a cut one only when equal.
            host = next(((h, cut) for h, full, cut in hosts if (full == seq if cut else full[:len(seq)] == seq)), None)
            if host is None:
                cut = max(0, len(seq) - window) if window else 0  # keep the last tokens, as lm-evaluation-harness
                truncated += cut > 0
                host = (len(seqs), cut)
                hosts.append((len(seqs), seq, cut))
                seqs.append(seq[cut:])
                wanted.append([])
            index, cut = host
            want = [(p - cut, t) for p, t in want]
            prompt_parts[k] = (index, range(len(wanted[index]), len(wanted[index]) + len(want)))
            wanted[index] += want
        parts.append(prompt_parts)
    if truncated:
        log.warning("%d option sequence(s) longer than the model's %d-token window were cut from the left",
                    truncated, window)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scored = _score_sequences(model, pad_id, seqs, wanted, batch_size, min_shared or 10**9)
    return [[sum(scored[s][j] for j in js) for s, js in prompt_parts] for prompt_parts in parts]


def loglik_choices(model, prompts: list[str], n_options: list[int], *, batch_size: int = 8,
                   min_shared: int = 64) -> list[int]:
    """The option index with the highest log-likelihood per prompt (the first on a tie, like numpy's argmax)."""
    scores = loglik_scores(model, prompts, n_options, batch_size=batch_size, min_shared=min_shared)
    return [max(range(len(s)), key=lambda k: (s[k], -k)) for s in scores]
