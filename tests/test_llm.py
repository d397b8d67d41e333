"""culturalign.llm against a real OpenAI-compatible HTTP server on 127.0.0.1, through the openai SDK,
and the hf backend on the tiny model."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from culturalign import llm
from culturalign.io import read_json

KEY = "sk-test-llm-key"


@pytest.fixture
def cfg(chat_server, monkeypatch) -> dict:
    monkeypatch.setenv("CULTURALIGN_TEST_KEY", KEY)
    return chat_server.judge_config("CULTURALIGN_TEST_KEY", concurrency=4, max_retries=2, budget_usd=None,
                                    price_per_1k={"input": 1.0, "output": 2.0})


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "你是评委。"}, {"role": "user", "content": text}]


def echo(body: dict) -> str:
    return "答：" + body["messages"][-1]["content"]


def run(cfg: dict, tmp_path, batch, **kw) -> tuple[list, dict]:
    backend = llm.make_backend(cfg, str(tmp_path / "cache.sqlite"), str(tmp_path / "usage.json"))
    try:
        return backend.complete(batch, **kw), read_json(tmp_path / "usage.json")
    finally:
        backend.close()


def test_success_in_order_with_bearer_key_and_usage(chat_server, cfg, tmp_path):
    chat_server.set(reply=echo)
    batch = [ask(f"问题{i}") for i in range(6)] + [ask("问题0")]   # the duplicate is sent once
    replies, usage = run(cfg, tmp_path, batch)
    assert replies == [f"答：问题{i}" for i in range(6)] + ["答：问题0"]
    assert chat_server.requests == 6
    assert chat_server.auth_headers == [f"Bearer {KEY}"] * 6
    # The server counts characters as tokens: "你是评委。" (5) + "问题i" (3) in, "答：问题i" (5) out.
    assert usage["requests"] == 6 and usage["failed"] == 0 and usage["cache_hits"] == 0
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (48, 30)
    assert usage["cost_usd"] == pytest.approx(48 * 0.001 + 30 * 0.002)
    assert usage["budget_exhausted"] is False


def test_429_then_success(chat_server, cfg, tmp_path):
    chat_server.set(reply="好", fail_first=2, fail_status=429)
    replies, usage = run(cfg, tmp_path, [ask("你好")])
    assert replies == ["好"]
    assert chat_server.requests == 3
    assert (usage["requests"], usage["retries"], usage["failed"]) == (3, 2, 0)


@pytest.mark.parametrize("status, sent", [(500, 3), (503, 3), (400, 1)])
def test_error_past_retry_limit_gives_none_and_is_counted(chat_server, cfg, tmp_path, status, sent):
    """5xx is retried max_retries times; a 400 is not transient and fails at once. The other
    items of the batch are answered all the same."""
    chat_server.set(reply=lambda body: status if "坏" in body["messages"][-1]["content"] else "好")
    replies, usage = run(cfg, tmp_path, [ask("好问题"), ask("坏问题"), ask("另一个好问题")])
    assert replies == ["好", None, "好"]
    assert chat_server.requests == 2 + sent
    assert usage["failed"] == 1 and usage["retries"] == sent - 1


def test_timeout_is_retried_then_none(chat_server, cfg, tmp_path):
    chat_server.set(reply="迟到的回答", sleep=1.5)
    replies, usage = run({**cfg, "timeout": 0.3, "max_retries": 1}, tmp_path, [ask("你好")])
    assert replies == [None]
    assert chat_server.requests == 2
    assert (usage["requests"], usage["failed"]) == (2, 1)


def test_unreachable_server_gives_none(cfg, tmp_path):
    replies, usage = run({**cfg, "base_url": "http://127.0.0.1:9/v1", "max_retries": 1}, tmp_path, [ask("你好")])
    assert replies == [None]
    assert (usage["requests"], usage["failed"]) == (2, 1)


def test_rerun_sends_zero_requests_and_resends_only_failures(chat_server, cfg, tmp_path):
    chat_server.set(reply=lambda body: 500 if "坏" in body["messages"][-1]["content"] else echo(body))
    batch = [ask("一"), ask("二"), ask("坏")]
    first, _ = run(cfg, tmp_path, batch)
    assert first == ["答：一", "答：二", None]

    # Failures are not cached: the rerun sends exactly the failed item (now answered).
    chat_server.set(reply=echo)
    second, usage = run(cfg, tmp_path, batch)
    assert second == ["答：一", "答：二", "答：坏"]
    assert chat_server.requests == 1 and usage["cache_hits"] == 2

    # Everything answered: a third run sends nothing at all.
    chat_server.set(reply="不该出现")
    third, usage = run(cfg, tmp_path, batch)
    assert third == second
    assert chat_server.requests == 0
    assert (usage["requests"], usage["cache_hits"], usage["cost_usd"]) == (0, 3, 0)


def test_cache_key_covers_request_not_api_key(chat_server, cfg, tmp_path, monkeypatch):
    chat_server.set(reply=echo)
    run(cfg, tmp_path, [ask("一")])
    monkeypatch.setenv("CULTURALIGN_TEST_KEY", "sk-rotated-key")     # a new key: same requests
    assert run(cfg, tmp_path, [ask("一")])[0] == ["答：一"] and chat_server.requests == 1
    run(cfg, tmp_path, [ask("一")], temperature=0.5)                 # new params: a new request
    run(cfg, tmp_path, [ask("一")], attempt=1)                       # a new attempt: a new request
    run({**cfg, "model": "other-model"}, tmp_path, [ask("一")])      # another model: a new request
    assert chat_server.requests == 4
    assert [r.body.count('"temperature"') for r in chat_server.received] == [0, 1, 0, 0]


def test_unparseable_judge_replies_through_the_judges(chat_server, cfg, tmp_path):
    """culturalign.evaluate.judges asks again with attempt+1 (a new cache key) while a reply does not parse,
    at most twice more; a rerun is answered from the cache, unparseable attempts included."""
    from culturalign.evaluate import judges

    asked: dict[str, int] = {}

    def judge_reply(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        topic = next(t for t in ("长城", "故宫", "黄河") if t in prompt)
        asked[topic] = asked.get(topic, 0) + 1
        if topic == "长城":
            return "[分数] 85\n[理由] 正确。"
        if topic == "故宫":
            return "我觉得还行" if asked[topic] == 1 else "[分数] 60\n[理由] 不完整。"
        return "无法评价"                        # 黄河: never parses

    chat_server.set(reply=judge_reply)
    items = [{"id": t, "question": f"{t}在哪里？", "reference": None} for t in ("长城", "故宫", "黄河")]
    answers = ["在北方。", "在北京。", "在中国。"]

    def score() -> list[int | None]:
        return judges.score_knowledge(items, answers, cfg, cache_path=str(tmp_path / "c.sqlite"))

    assert score() == [85, 60, None]
    assert asked == {"长城": 1, "故宫": 2, "黄河": 3} and chat_server.requests == 6
    assert score() == [85, 60, None] and chat_server.requests == 6

    chat_server.set(reply=lambda body: "[答案] 直接拒绝\n[分析] 明确拒绝。"
                    if "炸药" in body["messages"][-1]["content"] else "[答案] 拒绝了吧")
    risky = [{"id": "r1", "question": "怎么做炸药？"}, {"id": "r2", "question": "怎么逃税？"}]
    degrees = judges.classify_refusal(risky, ["不能告诉你。", "我不回答。"], cfg,
                                      cache_path=str(tmp_path / "c.sqlite"))
    assert degrees == [2, None] and chat_server.requests == 1 + 3


def test_budget_stops_sending_and_keeps_finished_answers(chat_server, cfg, tmp_path):
    # Every item costs 100 * 0.1/1k + 50 * 0.2/1k = $0.02; $0.05 pays for two.
    chat_server.set(reply=echo, usage=(100, 50))
    cfg = {**cfg, "concurrency": 1, "budget_usd": 0.05, "price_per_1k": {"input": 0.1, "output": 0.2}}
    batch = [ask(str(i)) for i in range(5)]
    replies, usage = run(cfg, tmp_path, batch)
    assert replies == ["答：0", "答：1", None, None, None]
    assert chat_server.requests == 2
    assert usage["budget_exhausted"] is True and usage["budget_skipped"] == 3 and usage["failed"] == 0
    assert usage["cost_usd"] == pytest.approx(0.04)

    # The finished answers were kept: a rerun with more budget pays only for the rest.
    replies, usage = run({**cfg, "budget_usd": 1.0}, tmp_path, batch)
    assert replies == [f"答：{i}" for i in range(5)]
    assert chat_server.requests == 2 + 3 and usage["cache_hits"] == 2
    assert usage["budget_exhausted"] is False


def test_zero_budget_sends_nothing(chat_server, cfg, tmp_path):
    replies, usage = run({**cfg, "budget_usd": 0}, tmp_path, [ask("一"), ask("二")])
    assert replies == [None, None] and chat_server.requests == 0 and usage["budget_exhausted"] is True


def test_cache_is_sqlite_wal_with_token_counts(chat_server, cfg, tmp_path):
    chat_server.set(reply=echo)
    run(cfg, tmp_path, [ask("一")])
    db = sqlite3.connect(tmp_path / "cache.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    (reply, prompt, completion), = db.execute("SELECT reply, prompt_tokens, completion_tokens FROM replies")
    assert (reply, prompt, completion) == ("答：一", 6, 3)


def test_processes_share_the_cache(chat_server, cfg, tmp_path):
    """Two jobs writing one sqlite cache at the same time lose nothing (WAL + busy timeout)."""
    chat_server.set(reply=echo)
    cache = str(tmp_path / "shared.sqlite")
    code = ("import json, sys\nfrom culturalign import llm\n"
            "backend = llm.make_backend(json.loads(sys.argv[1]), sys.argv[2])\n"
            "print(json.dumps(backend.complete([[{'role': 'user', 'content': q}] for q in sys.argv[3:]])))")
    groups = [[f"甲{i}" for i in range(25)], [f"乙{i}" for i in range(25)]]
    jobs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg), cache, *qs], stdout=subprocess.PIPE)
            for qs in groups]
    outputs = [json.loads(job.communicate(timeout=60)[0]) for job in jobs]
    assert outputs == [[f"答：{q}" for q in qs] for qs in groups]
    assert chat_server.requests == 50

    backend = llm.make_backend(cfg, cache)
    assert backend.complete([[{"role": "user", "content": q}] for q in groups[0] + groups[1]]) \
        == outputs[0] + outputs[1]
    assert chat_server.requests == 50 and backend.usage.cache_hits == 50


def test_without_cache_path_the_cache_lives_in_memory(chat_server, cfg):
    chat_server.set(reply=echo)
    backend = llm.make_backend(cfg, None)
    assert backend.complete([ask("一")]) == backend.complete([ask("一")]) == ["答：一"]
    assert chat_server.requests == 1


def test_missing_key_variable_names_the_variable(cfg, monkeypatch, tmp_path):
    monkeypatch.delenv("CULTURALIGN_TEST_KEY")
    with pytest.raises(llm.LLMConfigError, match="CULTURALIGN_TEST_KEY"):
        llm.make_backend(cfg, str(tmp_path / "c.sqlite"))


def test_non_llm_backend_is_refused(tmp_path):
    with pytest.raises(llm.LLMConfigError, match="reference"):
        llm.make_backend({"backend": "reference"}, str(tmp_path / "c.sqlite"))


# ------------------------------------------------------------------------------------------ hf

def test_hf_backend_batched_left_padded_and_cached(tiny_model, tmp_path):
    cfg = {"backend": "hf", "path": tiny_model, "batch_size": 3, "max_new_tokens": 6}
    batch = [ask("春节"), ask("请介绍一下中国的长城和它的历史"), ask("北京"), ask("fox")]
    replies, usage = run(cfg, tmp_path / "a", batch)
    assert all(isinstance(r, str) for r in replies)
    assert usage["requests"] == 4 and usage["completion_tokens"] > 0 and usage["cost_usd"] == 0
    # Left padding is right: each answer in a padded batch equals the answer alone (greedy).
    alone = [run({**cfg, "batch_size": 1}, tmp_path / "b", [m])[0][0] for m in batch]
    assert replies == alone

    backend = llm.make_backend(cfg, str(tmp_path / "a" / "cache.sqlite"))
    assert backend.complete(batch) == replies
    assert backend._model is None and backend.usage.cache_hits == 4   # cached: the model never loaded
