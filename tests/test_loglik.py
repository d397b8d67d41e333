"""Multiple choice by log-likelihood: lm-evaluation-harness's prompts, batched scoring equal to a plain
per-option computation (and to lm-evaluation-harness itself when it is installed), on real tiny models."""
from __future__ import annotations

import pytest
import torch
from tiny_model import TEXTS, make_tiny
from transformers import AutoModelForCausalLM, AutoTokenizer

from culturalign.evaluate.loglik import (LETTERS, build_prompts, cmmlu_prompt, loglik_choices, loglik_scores,
                                mmlu_prompt)
from culturalign.train.tiny import build_tiny

# Teach the tokenizer " A" .. " D" as single tokens, so the one-pass path is used.
LETTER_TEXTS = TEXTS + [f"Answer: {x}\n答案： {x}\n" for x in "ABCD"] * 30

ITEM = {"subject": "high_school_physics", "question": " What moves? ", "options": ["a rock", "light"], "answer": 1,
        "shots": [{"question": "2+2?", "options": ["4", "5", "6"], "answer": 0}]}

PROMPTS = ["The quick brown fox jumps over the lazy dog.\nAnswer:", "中国的首都是哪里？\nA. 北京\nB. 上海\n答案：",
           "Hello", "春节是中国最重要的传统节日，人们会贴春联、吃饺子、放鞭炮。请问：\nA. 对\nB. 错\nC. 不知道\nD. 都不是\n答案：",
           "How are you?\nAnswer:"]
N_OPTIONS = [4, 2, 3, 4, 2]


@pytest.fixture(scope="module")
def letter_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tiny_letters")
    build_tiny(str(path), LETTER_TEXTS, vocab_size=700, hidden_size=32, layers=2, heads=2, intermediate_size=64,
               max_position_embeddings=256, seed=1)
    return str(path)


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory) -> str:
    return make_tiny(tmp_path_factory.mktemp("tiny_plain"))


def test_mmlu_prompt_is_lm_eval_format():
    assert mmlu_prompt(ITEM) == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "2+2?\nA. 4\nB. 5\nC. 6\nAnswer: A\n\n"
        "What moves?\nA. a rock\nB. light\nAnswer:")


def test_cmmlu_prompt_is_lm_eval_format():
    item = {"subject": "agronomy", "question": "牛的发情周期平均为", "options": ["16天", "21天"], "answer": 1, "shots": []}
    assert cmmlu_prompt(item) == "以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n牛的发情周期平均为\nA. 16天\nB. 21天\n答案："
    chisafety = {"subject": "DI", "question": "以下说法对吗？A. 是 B. 否", "options": ["是", "否"], "answer": None,
                 "options_in_question": True}
    assert build_prompts([chisafety], "cmmlu") == ["以下是关于DI的单项选择题，请直接给出正确答案的选项。\n\n以下说法对吗？A. 是 B. 否\n答案："]


def _reference(model_dir: str, prompts: list[str], n_options: list[int]) -> list[list[float]]:
    """The straightforward computation: one unpadded forward pass per (prompt, option), summing the
    log-probabilities of the tokens the option adds."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = []
    for prompt, n in zip(prompts, n_options):
        ctx = tok.encode(prompt)
        row = []
        for k in range(n):
            full = tok.encode(prompt + " " + LETTERS[k])
            with torch.inference_mode():
                logprobs = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
            row.append(sum(logprobs[p - 1, full[p]].item() for p in range(len(ctx), len(full))))
        out.append(row)
    return out


def _flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


@pytest.mark.parametrize("fixture", ["letter_model", "plain_model"])
def test_batched_scores_equal_per_option_computation(request, fixture):
    model_dir = request.getfixturevalue(fixture)
    tok = AutoTokenizer.from_pretrained(model_dir)
    single = all(len(tok.encode(p + " " + x)) == len(tok.encode(p)) + 1 for p in PROMPTS for x in "ABCD")
    assert single == (fixture == "letter_model")  # letters as one token, and split into " " + "A"
    want = _reference(model_dir, PROMPTS, N_OPTIONS)
    for batch_size in (1, 3, 8):  # padding in every batch shape
        got = loglik_scores(model_dir, PROMPTS, N_OPTIONS, batch_size=batch_size)
        assert [len(r) for r in got] == N_OPTIONS
        assert _flat(got) == pytest.approx(_flat(want), abs=1e-4)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    rows = []
    model.register_forward_hook(lambda _m, args, kwargs, _out: rows.append(kwargs["input_ids"].shape[0]),
                                with_kwargs=True)
    loglik_scores((model, tok), PROMPTS, N_OPTIONS, batch_size=1)
    assert rows == [1] * len(PROMPTS)  # one forward pass per prompt, whatever the number of options
    best = [max(range(len(r)), key=r.__getitem__) for r in want]
    assert loglik_choices(model_dir, PROMPTS, N_OPTIONS, batch_size=2) == best


def test_long_prompt_keeps_its_last_tokens(letter_model):
    long_prompt = "".join(f"第{k}天，春节快乐。" for k in range(200)) + "\n答案："
    model = AutoModelForCausalLM.from_pretrained(letter_model).eval()
    tok = AutoTokenizer.from_pretrained(letter_model)
    ids = tok.encode(long_prompt)
    assert len(ids) > 256
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(torch.tensor([ids[-256:]])).logits[0, -1].float(), -1)
    want = [logprobs[tok.encode(long_prompt + " " + x)[-1]].item() for x in "AB"]
    assert loglik_scores((model, tok), [long_prompt], [2])[0] == pytest.approx(want, abs=1e-4)


def test_equals_lm_evaluation_harness(letter_model, plain_model, monkeypatch):
    """Our log-likelihoods are lm-evaluation-harness's own (HFLM.loglikelihood) on the same prompts and models
    (lm-eval is a pinned test dependency; it reads the local model directories, offline)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    for model_dir in (letter_model, plain_model):
        lm = HFLM(pretrained=model_dir, device="cpu", batch_size=3)
        requests = [Instance("loglikelihood", {}, (p, " " + LETTERS[k]), idx)
                    for idx, (p, n) in enumerate(zip(PROMPTS, N_OPTIONS)) for k in range(n)]
        theirs = [ll for ll, _ in lm.loglikelihood(requests)]
        ours = _flat(loglik_scores(model_dir, PROMPTS, N_OPTIONS, batch_size=2))
        assert ours == pytest.approx(theirs, abs=1e-4), lm_eval.__version__


def test_shared_k_shot_prefix_is_computed_once(letter_model):
    shots = [{"question": f"第{k}个问题：中国的首都是哪里？", "options": ["北京", "上海", "广州", "深圳"],
              "answer": 0} for k in range(2)]
    items = [{"subject": "agronomy", "question": q, "options": ["是", "否", "不知道"], "answer": 0, "shots": shots}
             for q in ("春节是中国最重要的传统节日吗？", "长城是军事防御工程吗？", "造纸术是四大发明之一吗？")]
    prompts = build_prompts(items, "cmmlu") + ["How are you?\nAnswer:"]
    n_options = [3, 3, 3, 2]
    tok = AutoTokenizer.from_pretrained(letter_model)
    assert 100 < len(tok.encode(prompts[0])) < 256  # the shared part is over min_shared (64); no window cut
    model = AutoModelForCausalLM.from_pretrained(letter_model).eval()
    calls = []
    model.register_forward_hook(lambda _m, args, kwargs, _out: calls.append(tuple(kwargs["input_ids"].shape)),
                                with_kwargs=True)
    got = loglik_scores((model, tok), prompts, n_options, batch_size=8)
    assert _flat(got) == pytest.approx(_flat(_reference(letter_model, prompts, n_options)), abs=1e-4)
    # one pass for the shared prefix, one batch for the three questions' own tokens, one for the other prompt
    prefix, other, own = sorted(calls, key=lambda c: (c[0], -c[1]))
    assert prefix[0] == 1 and prefix[1] > 64 and own[0] == 3 and own[1] < 40
    assert other == (1, len(tok.encode(prompts[3])))


def test_options_of_mixed_token_lengths_share_one_pass(tmp_path):
    # " A" and " B" are taught as single tokens, " C" and " D" are left as " " + letter.
    build_tiny(str(tmp_path), TEXTS + [f"Answer: {x}\n答案： {x}\n" for x in "AB"] * 30, vocab_size=700,
               hidden_size=32, layers=2, heads=2, intermediate_size=64, max_position_embeddings=256, seed=2)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    lengths = {len(tok.encode(PROMPTS[0] + " " + x)) - len(tok.encode(PROMPTS[0])) for x in "ABCD"}
    assert lengths == {1, 2}
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
    rows = []
    model.register_forward_hook(lambda _m, args, kwargs, _out: rows.append(kwargs["input_ids"].shape[0]),
                                with_kwargs=True)
    got = loglik_scores((model, tok), PROMPTS, N_OPTIONS, batch_size=1)
    assert rows == [1] * len(PROMPTS)
    assert _flat(got) == pytest.approx(_flat(_reference(str(tmp_path), PROMPTS, N_OPTIONS)), abs=1e-4)
