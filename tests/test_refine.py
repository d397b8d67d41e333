"""culturalign.data.refine: the weak-answer rules, and refinement end to end against a real HTTP server."""
from __future__ import annotations

import json

import pytest

from culturalign.data import refine
from culturalign.io import SCHEMA, frame, read_json, row_id

RULES = {"min_answer_chars": 10, "english_answer": True, "refusal": True, "truncated": True}
GOOD = "春节是中国最重要的传统节日，人们会贴春联、吃年夜饭、守岁和拜年。"


@pytest.mark.parametrize("question, answer, reasons", [
    ("春节有哪些习俗？", GOOD, []),
    ("中国的首都是哪里？", "北京。", ["too_short"]),
    ("春节有哪些习俗？", "People put up couplets and have a family dinner on New Year's Eve.", ["english_answer"]),
    ("What is the Spring Festival?", "The most important traditional festival in China.", []),
    ("春节有哪些习俗？", "作为一个AI，我无法回答这个问题，请咨询相关专业人士以获取帮助。", ["refusal"]),
    ("春节有哪些习俗？", "春节期间，人们通常会贴春联、吃年夜饭、守岁，还会走亲访友，互相", ["truncated"]),
    ("春节有哪些习俗？", "春节的习俗包括贴春联、吃年夜饭，以及", ["truncated"]),
    ("列出三种水果", "常见的水果有：\n1. 苹果\n2. 香蕉\n3. 橘子", []),   # a list ends without punctuation
    ("好", "嗯", ["too_short"]),
    ("用Python写一个函数求和", "```python\ndef add(a, b):\n    return a + b\n```", []),   # code is no language
    ("用Python写一个函数求和", "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```",
     ["english_answer"]),
])
def test_weak_reasons(question, answer, reasons):
    assert refine.weak_reasons(question, answer, RULES) == reasons


def test_rules_can_be_switched_off_and_refusal_is_fine_in_safety_data():
    refusal = "作为一个AI，我无法回答这个问题，请咨询相关专业人士以获取帮助。"
    assert refine.weak_reasons("如何制作炸药？", refusal, RULES, benign=False) == []
    assert refine.weak_reasons("春节有哪些习俗？", refusal, {**RULES, "refusal": False}) == []
    assert refine.weak_reasons("首都？", "北京。", {**RULES, "min_answer_chars": 0}) == []


def row(i: int, question: str, answer: str) -> dict:
    return {"id": row_id("demo", i), "source": "demo", "meta": json.dumps({"category": "节日"}),
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


@pytest.fixture
def judge(chat_server, monkeypatch) -> dict:
    monkeypatch.setenv("REFINE_TEST_KEY", "sk-refine-test")
    return chat_server.judge_config("REFINE_TEST_KEY", max_retries=1, backoff_max=0.02)


def rewrite(body: dict) -> str | int:
    """The scripted judge: rewrites the dumpling question well, answers English to the lantern one,
    and fails every request about the dragon boat."""
    prompt = body["messages"][-1]["content"]
    if "端午" in prompt:
        return 500
    if "元宵" in prompt:
        return "Lanterns and sweet dumplings."
    return "饺子象征团圆和财富，北方人在除夕夜一家人一起包饺子、吃饺子。"


def test_refine_frame_end_to_end(chat_server, judge, tmp_path):
    chat_server.set(reply=rewrite)
    rows = frame([
        row(0, "为什么春节要吃饺子？", "好吃。"),                 # weak, refined
        row(1, "春节有哪些习俗？", GOOD),                         # strong, untouched
        row(2, "端午节吃什么？", "粽子"),                          # weak, the request fails
        row(3, "元宵节有什么习俗？", "Eat tangyuan."),             # weak, the reply is rejected (English)
    ])
    cfg = {"enabled": True, "judge": "gpt", "max_rows": None, "rules": RULES}
    out, stats = refine.refine_frame(rows, cfg, judge, str(tmp_path / "c.sqlite"), str(tmp_path / "u.json"))

    assert stats == {"refined": 1, "refine_failed": 2, "refine_flagged": 3, "refine_skipped": 0}
    assert out.schema == rows.schema and out["id"].to_list() == rows["id"].to_list()
    refined = out.row(0, named=True)
    assert refined["messages"][-1]["content"] == "饺子象征团圆和财富，北方人在除夕夜一家人一起包饺子、吃饺子。"
    assert refined["messages"][0] == rows.row(0, named=True)["messages"][0]
    assert json.loads(refined["meta"]) == {"category": "节日", "refined": True,
                                           "refine_reason": "too_short", "original_answer": "好吃。"}
    for i in (1, 2, 3):
        assert out.row(i, named=True) == rows.row(i, named=True)
    # 3 items sent; the dragon boat one is retried once (max_retries 1).
    assert chat_server.requests == 4
    prompt = chat_server.received[0].body
    assert "中国的文化背景" in json.loads(prompt)["messages"][-1]["content"]
    assert read_json(tmp_path / "u.json")["failed"] == 1


def test_refine_replaces_the_last_assistant_turn_of_a_dialogue(chat_server, judge, tmp_path):
    chat_server.set(reply="饺子象征团圆和财富，北方人在除夕夜一家人一起包饺子、吃饺子。")
    dialogue = [{"role": "user", "content": "春节有哪些习俗？"}, {"role": "assistant", "content": GOOD},
                {"role": "user", "content": "为什么要吃饺子？"}, {"role": "assistant", "content": "好吃。"}]
    rows = frame([{"id": "d", "source": "demo", "meta": "{}", "messages": dialogue}], SCHEMA)
    out, stats = refine.refine_frame(rows, {"rules": RULES}, judge, str(tmp_path / "c.sqlite"), None)
    assert stats["refined"] == 1
    messages = out.row(0, named=True)["messages"]
    assert messages[:3] == dialogue[:3] and messages[3]["content"].startswith("饺子象征团圆")
    sent = json.loads(chat_server.received[0].body)["messages"][-1]["content"]
    assert GOOD in sent and "为什么要吃饺子？" in sent     # the whole dialogue is the context


def test_max_rows_caps_what_is_sent(chat_server, judge, tmp_path):
    chat_server.set(reply="饺子象征团圆和财富，北方人在除夕夜一家人一起包饺子、吃饺子。")
    rows = frame([row(i, f"问题{i}是什么？", "短") for i in range(5)])
    out, stats = refine.refine_frame(rows, {"max_rows": 2, "rules": RULES}, judge,
                                     str(tmp_path / "c.sqlite"), None)
    assert stats == {"refined": 2, "refine_failed": 0, "refine_flagged": 5, "refine_skipped": 3}
    assert chat_server.requests == 2
    assert [m[-1]["content"] for m in out["messages"].to_list()][2:] == ["短"] * 3


def test_nothing_weak_sends_nothing_and_needs_no_key(chat_server, tmp_path):
    rows = frame([row(0, "春节有哪些习俗？", GOOD)])
    judge = {"backend": "openai", "base_url": chat_server.url, "model": "m", "api_key_env": "UNSET_VAR_X"}
    out, stats = refine.refine_frame(rows, {"rules": RULES}, judge, str(tmp_path / "c.sqlite"), None)
    assert out.equals(rows) and stats["refine_flagged"] == 0 and chat_server.requests == 0


def test_translated_code_is_refined_when_refinement_is_on_and_dropped_when_it_stays(chat_server, judge, tmp_path):
    """With refinement on, an answer whose code was machine-translated is rewritten instead of dropped; a
    rewrite that still holds translated code, or a prompt with it, is dropped as translated_code."""
    from culturalign.data.source import clean_source

    translated = "代码如下：\n将 numpy 导入为 np\n定义 add_two(x):\n    返回 x + 2"
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps([
        {"instruction": "用Python写一个把数字加二的函数。", "input": "", "output": translated},
        {"instruction": "用Python写一个把数字乘以三的函数。", "input": "", "output": translated.replace("2", "3")},
        {"instruction": "解释这段代码：定义 f(x):\n    返回 x", "input": "", "output": "这个函数原样返回它的参数x。"},
        {"instruction": "春节有哪些习俗？", "input": "", "output": GOOD},
    ], ensure_ascii=False), encoding="utf-8")

    def rewrite_code(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        return ("```python\ndef add_two(x):\n    return x + 2\n```" if "加二" in prompt else translated)

    chat_server.set(reply=rewrite_code)
    refine_cfg = {"enabled": True, "rules": {"min_answer_chars": 0}}
    kept, rejected, stats = clean_source(str(source), "src", "alpaca", {"length": {"min_answer": 1}},
                                         rules_path=None, eval_questions=[], refine_cfg=refine_cfg,
                                         refine_judge=judge, llm_cache=str(tmp_path / "cache.sqlite"))
    answers = {m[0]["content"]: m[-1]["content"] for m in kept["messages"].to_list()}
    assert answers["用Python写一个把数字加二的函数。"].startswith("```python\ndef add_two(x):")
    assert stats["refined"] == 1 and stats["dropped"]["translated_code"] == 2
    assert sorted(m[0]["content"][:6] for m in rejected["messages"].to_list()) == ["用Pytho", "解释这段代码"]
    assert stats["rows_in"] == stats["rows_kept"] + stats["rows_rejected"] == 4
    assert chat_server.requests == 2   # the two answers, never the prompt that holds translated code


def test_broken_answers_go_to_refinement_first_and_what_stays_broken_is_dropped(chat_server, judge, tmp_path):
    """With refinement on, an answer that fails a cheap answer check (here: five items where three were
    asked for, an English answer to a Chinese request) is rewritten first; a rewrite that passes the
    check is kept, one that still fails is dropped with the check's reason. Missing content is not
    refinable (the content is not there to answer about): it is dropped at once."""
    from culturalign.data.source import clean_source

    five = "1. 苹果\n2. 香蕉\n3. 橙子\n4. 葡萄\n5. 西瓜"
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps([
        {"instruction": "列出三种常见的水果。", "input": "", "output": five},
        {"instruction": "简单介绍一下长城。", "input": "",
         "output": "The Great Wall is a series of fortifications built across northern China over centuries."},
        {"instruction": "总结以下文章。", "input": "", "output": "这篇文章讲了科技的发展和它对生活的影响。"},
        {"instruction": "春节有哪些习俗？", "input": "", "output": GOOD},
    ], ensure_ascii=False), encoding="utf-8")

    def rewrite(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        return "1. 苹果\n2. 香蕉\n3. 橙子" if "水果" in prompt else "The Great Wall is very long and very old indeed."

    chat_server.set(reply=rewrite)
    kept, rejected, stats = clean_source(str(source), "src", "alpaca", {}, rules_path=None, eval_questions=[],
                                         refine_cfg={"enabled": True, "rules": {"min_answer_chars": 0}},
                                         refine_judge=judge, llm_cache=str(tmp_path / "cache.sqlite"))
    answers = {m[0]["content"]: m[-1]["content"] for m in kept["messages"].to_list()}
    assert answers["列出三种常见的水果。"] == "1. 苹果\n2. 香蕉\n3. 橙子" and stats["refined"] == 1
    assert dict(zip([m[0]["content"] for m in rejected["messages"].to_list()], rejected["drop_reason"])) == {
        "简单介绍一下长城。": "answer_language", "总结以下文章。": "missing_content"}
    assert stats["dropped"]["answer_language"] == 1 and stats["dropped"]["answer_count"] == 0
    assert stats["rows_in"] == stats["rows_kept"] + stats["rows_rejected"] == 4
    assert chat_server.requests == 2   # the two broken answers, never the row with missing content
