"""The optional LLM second opinion on English context, against the real local OpenAI-compatible server."""
from __future__ import annotations

import json

import polars as pl
import pytest

from culturalign import io
from culturalign.data import answers
from culturalign.data.clean import clean_frame
from culturalign.data.review import review_sheet

ANSWER = "这是一个足够长的回答，用来通过长度检查。"
CFG = {"answers": {name: False for name in answers.CHECKS}, "mojibake": False, "length": {"enabled": False}, "cjk": {"enabled": False}, "translated_code": False,
       "exact_dedup": False, "near_dedup": {"enabled": False}, "decontaminate": {"enabled": False}}
PROMPTS = {
    "r0": "英语里哪些单词和cat押韵？",          # a rule fires: not asked when ask is "unsure"
    "r1": "“cat”这个词在句子里起什么作用？",     # only a hint (a quoted English word): asked, judge says English
    "r2": "学英语应该先学语法还是先学单词？",    # only a hint: asked, judge says not English
    "r3": "长城有多长？",                        # nothing fires: not asked
    "r4": "美国人怎么看待“cool”这个说法？",      # only a hint: asked, the judge's reply is unusable
}


def judge_reply(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    return {"“cat”": "是。", "学英语": "否", "cool": "也许吧"}[next(k for k in ("“cat”", "学英语", "cool") if k in prompt)]


@pytest.fixture
def judge(chat_server, monkeypatch) -> dict:
    monkeypatch.setenv("EN_JUDGE_KEY", "sk-en-test")
    return chat_server.judge_config("EN_JUDGE_KEY", max_retries=0)


def rows() -> pl.DataFrame:
    return io.frame([{"id": i, "source": "s", "meta": "{}", "messages": [{"role": "user", "content": p},
                                                                       {"role": "assistant", "content": ANSWER}]}
                     for i, p in PROMPTS.items()])


def test_judge_decides_the_unsure_rows_and_a_rerun_sends_nothing(chat_server, judge, tmp_path):
    chat_server.set(reply=judge_reply)
    cfg = {**CFG, "english_context": {"judge": "gpt"}}
    cache, usage = str(tmp_path / "cache.sqlite"), str(tmp_path / "usage.json")
    kept, rejected, dropped, notes = clean_frame(rows(), cfg, english_judge=judge, llm_cache=cache, llm_usage=usage)
    assert chat_server.requests == 3
    assert notes["english_context"] == {"asked": 3, "failed": 1, "llm_english": 1, "disagree": 1}
    assert dict(rejected.select("id", "drop_reason").iter_rows()) == {"r0": "english_context", "r1": "english_context"}
    meta = {r["id"]: json.loads(r["meta"]) for r in pl.concat([kept, rejected.drop("drop_reason")]).iter_rows(named=True)}
    assert meta["r0"]["english_context"]["by"] == "rule" and meta["r0"]["english_context"]["english"] is True
    assert meta["r1"]["english_context"] == {"english": True, "by": "llm", "rule": None}
    assert meta["r2"]["english_context"] == {"english": False, "by": "llm", "rule": None}
    assert "english_context" not in meta["r3"] and "english_context" not in meta["r4"]  # r4: no verdict, rules keep it
    assert "英语语境" in json.loads(chat_server.received[0].body)["messages"][0]["content"]

    chat_server.set(reply=judge_reply)
    again = clean_frame(rows(), cfg, english_judge=judge, llm_cache=cache, llm_usage=usage)
    assert chat_server.requests == 0
    assert again.kept.equals(kept) and again.rejected.equals(rejected)


def test_ask_all_lets_the_judge_overrule_a_rule(chat_server, judge, tmp_path):
    chat_server.set(reply=lambda body: "否")
    cfg = {**CFG, "english_context": {"judge": "gpt", "ask": "all"}}
    kept, rejected, _, notes = clean_frame(rows(), cfg, english_judge=judge, llm_cache=str(tmp_path / "c.sqlite"))
    assert chat_server.requests == 5 and rejected.height == 0
    assert notes["english_context"] == {"asked": 5, "failed": 0, "llm_english": 0, "disagree": 1}
    sheet = review_sheet(kept, 2, seed=0, clean_cfg=cfg)
    assert sheet.row(0, named=True)["id"] == "r0"
    assert sheet.row(0, named=True)["flags"].startswith("english_context? the rules and the LLM disagree")


def test_a_named_judge_without_its_config_is_an_error():
    with pytest.raises(ValueError, match="clean.english_context.judge is 'gpt'"):
        clean_frame(rows(), {**CFG, "english_context": {"judge": "gpt"}})
