"""The API key never leaves the environment: not in logs, stderr, cache, usage JSON, outputs or errors.

A recognisable key is planted; the client and the refinement run against a real HTTP server that
fails in every way it can, including error bodies that repeat the key (as OpenAI's 401 does).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from culturalign import llm
from culturalign.data import refine
from culturalign.io import frame, row_id, write_parquet
from openai_server import Raw

SECRET = "sk-culturalign-SECRET-1234567890"
VAR = "CULTURALIGN_SECRET_TEST_KEY"


def hostile(server):
    """Replies by a marker in the question: [500], [401], [raw] (a non-JSON body that carries the
    key); anything else gets a good Chinese answer. Every error body echoes the key."""
    def reply(body: dict):
        question = body["messages"][-1]["content"]
        if "[500]" in question:
            return 500
        if "[401]" in question:
            return 401
        if "[raw]" in question:
            return Raw(f"upstream proxy error for {server.auth_headers[-1]}")
        return "饺子象征团圆和财富，北方人在除夕夜一家人一起包饺子、吃饺子。"
    return reply


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.fixture
def secret_cfg(chat_server, monkeypatch) -> dict:
    monkeypatch.setenv(VAR, SECRET)
    chat_server.set(reply=hostile(chat_server), echo_key=True, fail_first=1, fail_status=429)
    return chat_server.judge_config(VAR, max_retries=1, backoff_max=0.02, price_per_1k={"input": 0.5, "output": 1.0})


def test_key_appears_nowhere(chat_server, secret_cfg, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)          # every logger: ours, openai's, httpx's, uvicorn's
    out = tmp_path / "results"
    cache, usage = str(out / "cache" / "llm.sqlite"), str(out / "llm" / "job.json")

    backend = llm.make_backend(secret_cfg, cache, usage)
    questions = ["好", "[500]", "[401]", "[raw]", "也好"]
    replies = backend.complete([[{"role": "user", "content": q}] for q in questions])
    assert [r is not None for r in replies] == [True, False, False, False, True]
    open_files = files_under(out)            # the sqlite WAL/shm files exist while it is open
    backend.close()

    rows = frame([{"id": row_id("s", i), "source": "s", "meta": "{}",
                   "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "短"}]}
                  for i, q in enumerate(["春节吃什么？", "端午吃什么[500]？", "中秋吃什么[401]？"])])
    refined, stats = refine.refine_frame(rows, {"rules": {}}, secret_cfg, cache,
                                         str(out / "llm" / "refine.json"))
    assert stats["refined"] == 1 and stats["refine_failed"] == 2
    write_parquet(refined, out / "clean.parquet")

    slow = {**secret_cfg, "timeout": 0.2, "max_retries": 0}
    chat_server.set(reply="慢", sleep=0.6, echo_key=True)
    timed_out = llm.make_backend(slow, cache, str(out / "llm" / "slow.json"))
    assert timed_out.complete([[{"role": "user", "content": "超时"}]]) == [None]
    timed_out.close()

    # A call the SDK rejects raises (nothing is swallowed), without the key in the message.
    bad = llm.make_backend(secret_cfg, cache, None)
    with pytest.raises(TypeError) as bad_call:
        bad.complete([[{"role": "user", "content": "新问题"}]], no_such_parameter=1)
    bad.close()

    # The key really was in play: sent as the bearer token, and echoed back in error bodies...
    assert chat_server.auth_headers and set(chat_server.auth_headers) == {f"Bearer {SECRET}"}
    assert "incorrect API key provided: Bearer ***" in caplog.text
    # ...and sent nowhere else: not in any other header, nor in the request bodies.
    for request in chat_server.received:
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert SECRET not in repr(others) and SECRET not in request.body

    captured = capfd.readouterr()
    texts = {"logs": caplog.text, "stdout": captured.out, "stderr": captured.err,
             "exception": f"{bad_call.value!r} {bad_call.value}"}
    for name, text in texts.items():
        assert SECRET not in text, f"key leaked into {name}"
    written = {**open_files, **files_under(out)}
    assert any(name.endswith("llm.sqlite") for name in written) and len(written) >= 5
    for name, data in written.items():
        assert SECRET.encode() not in data, f"key leaked into {name}"


def test_missing_key_error_names_the_variable_only(monkeypatch, tmp_path):
    monkeypatch.setenv(VAR, "")
    with pytest.raises(llm.LLMConfigError) as err:
        llm.make_backend({"backend": "openai", "model": "m", "api_key_env": VAR}, str(tmp_path / "c.sqlite"))
    assert VAR in str(err.value)
