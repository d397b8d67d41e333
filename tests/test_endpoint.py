"""Generation through an OpenAI-compatible endpoint, against a real HTTP server on 127.0.0.1 that is
the model (tests/openai_server.py): same table and scores as in-process generation, the request
parameters on the wire, the cache, failures, a wrong model name, an unreachable URL, the key."""
from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import polars as pl
import pytest
import yaml
from snakemake.utils import validate

from culturalign.evaluate.evalsets import load
from culturalign.evaluate.endpoint import EndpointError, endpoint_config, generate_endpoint
from culturalign.evaluate.generate import COLUMNS, generate, with_items
from culturalign.io import read_json, write_parquet
from culturalign.evaluate.judges import score_knowledge
from culturalign.evaluate.metrics import knowledge_report
from openai_server import Raw, model_answer

REPO = Path(__file__).resolve().parents[1]
VAR = "CULTURALIGN_ENDPOINT_TEST_KEY"
SECRET = "sk-culturalign-ENDPOINT-SECRET-0987654321"
MODEL = "served-model"


@pytest.fixture
def endpoint(chat_server, monkeypatch) -> dict:
    monkeypatch.setenv(VAR, SECRET)
    chat_server.set(reply=model_answer, models=(MODEL, "other-model"))
    return {"base_url": chat_server.url, "model": MODEL, "api_key_env": VAR, "concurrency": 4, "timeout": 5,
            "max_retries": 2, "backoff": 0.01, "backoff_max": 0.02}


def items_of(questions: list[str]) -> list[dict]:
    items = [{"id": f"q{i}", "question": q, "history": []} for i, q in enumerate(questions)]
    items[1]["history"] = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
    return items


QUESTIONS = ["中国的首都是哪里？", "继续说", "写一首关于春天的诗，要很长很长很长很长。", "长城有多长？"]


def test_table_and_request_match_in_process_semantics(chat_server, endpoint, tmp_path):
    items = items_of(QUESTIONS)
    usage = tmp_path / "usage.json"
    out = generate_endpoint(items, endpoint, max_new_tokens=12, cache_path=str(tmp_path / "c.sqlite"),
                            usage_path=str(usage))
    assert out.schema == pl.Schema(COLUMNS) and out["id"].to_list() == ["q0", "q1", "q2", "q3"]
    expected = [model_answer({"messages": [{"content": q}], "max_tokens": 12}) for q in QUESTIONS]
    assert out["answer"].to_list() == expected and len(set(expected)) == 4
    assert out["answer_tokens"].to_list() == [len(a) for a in expected]   # the server's usage counts
    assert max(out["answer_tokens"]) == 12                                  # max_new_tokens cut the long one
    # max_new_tokens and greedy temperature went over the wire; the history as messages, no template.
    bodies = sorted((json.loads(r.body) for r in chat_server.received), key=lambda b: b["messages"][-1]["content"])
    assert {b["max_tokens"] for b in bodies} == {12} and {b["temperature"] for b in bodies} == {0.0}
    assert {b["model"] for b in bodies} == {MODEL}
    with_history = next(b for b in bodies if b["messages"][-1]["content"] == "继续说")
    assert [m["role"] for m in with_history["messages"]] == ["user", "assistant", "user"]
    assert json.loads(out["prompt"][1]) == with_history["messages"]
    assert out["prompt_tokens"][1] == len("你好你好！继续说")
    assert chat_server.requests == 4 and chat_server.model_lists == 1
    spent = read_json(usage)
    assert spent["requests"] == 5 and spent["completion_tokens"] == sum(out["answer_tokens"])


def test_rerun_sends_nothing(chat_server, endpoint, tmp_path):
    items, cache = items_of(QUESTIONS), str(tmp_path / "c.sqlite")
    first = generate_endpoint(items, endpoint, max_new_tokens=8, cache_path=cache, usage_path=None)
    chat_server.set(reply=500, models=())       # a broken server: any request would show
    usage = tmp_path / "rerun.json"
    again = generate_endpoint(items, endpoint, max_new_tokens=8, cache_path=cache, usage_path=str(usage))
    assert chat_server.requests == 0 and chat_server.model_lists == 0
    assert again.drop("latency_s").equals(first.drop("latency_s"))
    assert read_json(usage)["cache_hits"] == 4 and read_json(usage)["requests"] == 0
    # Another max_new_tokens is another request: the key covers every parameter.
    chat_server.set(reply=model_answer, models=(MODEL,))
    generate_endpoint(items[:1], endpoint, max_new_tokens=9, cache_path=cache, usage_path=None)
    assert chat_server.requests == 1


def test_scores_have_the_in_process_shape(chat_server, endpoint, tiny_model, tmp_path):
    """The demo knowledge set through both paths, scored the same way: identical JSON shape, and the
    endpoint (answering the references) scores 1.0."""
    items = load(REPO / "demo" / "eval" / "knowledge.jsonl", limit=6)
    reference = {it["question"]: it["reference"] for it in items}
    chat_server.set(reply=lambda body: reference[body["messages"][-1]["content"]], models=(MODEL,))
    served = generate_endpoint(items, endpoint, max_new_tokens=64, cache_path=None, usage_path=None)
    local = generate(tiny_model, items, max_new_tokens=4, batch_size=6, backend="transformers")
    reports = {}
    for name, frame in (("served", served), ("local", local)):
        write_parquet(with_items(frame, items), tmp_path / f"{name}.parquet")
        written = pl.read_parquet(tmp_path / f"{name}.parquet")
        answers = written["answer"].to_list()
        scores = score_knowledge(items, answers, {"backend": "reference"})
        reports[name] = knowledge_report(items, answers, scores, model=name, benchmark="knowledge",
                                         judge="reference", threshold=90)
    assert pl.read_parquet(tmp_path / "served.parquet").schema == pl.read_parquet(tmp_path / "local.parquet").schema
    assert shape(reports["served"]) == shape(reports["local"])
    assert reports["served"]["acc"]["overall"] == 1.0


def shape(value):
    """The keys of a JSON value, recursively (numbers and strings are not compared)."""
    return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else type(value).__name__


def test_429_and_5xx_are_retried(chat_server, endpoint, tmp_path):
    chat_server.set(reply=model_answer, models=(MODEL,), fail_first=3, fail_status=503)
    usage = tmp_path / "u.json"
    out = generate_endpoint(items_of(QUESTIONS), endpoint | {"max_retries": 3}, max_new_tokens=8,
                            cache_path=None, usage_path=str(usage))
    assert out.height == 4 and read_json(usage)["retries"] == 3 and chat_server.requests == 7
    chat_server.set(reply=model_answer, models=(MODEL,), fail_first=2, fail_status=429)
    assert generate_endpoint(items_of(QUESTIONS), endpoint, max_new_tokens=7, cache_path=None,
                             usage_path=None).height == 4


def test_items_left_unanswered_fail_the_job_and_rerun_sends_only_them(chat_server, endpoint, tmp_path):
    """A persistent 500 and a non-JSON body leave two items without an answer: the job fails naming them;
    the others are cached, so once the server is fixed the rerun sends two requests."""
    def flaky(body):
        question = body["messages"][-1]["content"]
        return 500 if "首都" in question else Raw("<html>bad gateway</html>") if "长城" in question else model_answer(body)
    chat_server.set(reply=flaky, models=(MODEL,))
    items, cache = items_of(QUESTIONS), str(tmp_path / "c.sqlite")
    usage = tmp_path / "u.json"
    with pytest.raises(EndpointError, match=r"2 of 4 items got no answer from http://127\.0\.0\.1:\d+/v1 .*q0, q3"):
        generate_endpoint(items, endpoint, max_new_tokens=8, cache_path=cache, usage_path=str(usage))
    assert read_json(usage)["failed"] == 2 and read_json(usage)["retries"] == 2   # 500 retried, garbage not
    chat_server.set(reply=model_answer, models=(MODEL,))
    out = generate_endpoint(items, endpoint, max_new_tokens=8, cache_path=cache, usage_path=None)
    assert chat_server.requests == 2 and out["answer"].null_count() == 0


def test_unreachable_endpoint_names_the_url_not_the_key(endpoint, tmp_path):
    with socket.socket() as sock:      # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    usage = tmp_path / "u.json"
    with pytest.raises(EndpointError) as err:
        generate_endpoint(items_of(QUESTIONS), endpoint | {"base_url": url}, max_new_tokens=8,
                          cache_path=None, usage_path=str(usage))
    assert url in str(err.value) and "3 attempt(s)" in str(err.value) and SECRET not in str(err.value)
    assert read_json(usage)["requests"] == 3        # the first try and max_retries=2 retries


def test_unknown_model_lists_the_served_ones(chat_server, endpoint):
    with pytest.raises(EndpointError, match="'llama-3-8b' is not served at .*it lists: 'served-model', 'other-model'"):
        generate_endpoint(items_of(QUESTIONS), endpoint | {"model": "llama-3-8b"}, max_new_tokens=8,
                          cache_path=None, usage_path=None)
    assert chat_server.requests == 0
    # An endpoint without a model list (404) is not checked: generation goes ahead.
    chat_server.set(reply=model_answer, models_status=404)
    assert generate_endpoint(items_of(QUESTIONS), endpoint, max_new_tokens=8, cache_path=None,
                             usage_path=None).height == 4


def test_budget_stops_sending(chat_server, endpoint):
    with pytest.raises(EndpointError, match=r"4 of 4 items .*budget of \$0"):
        generate_endpoint(items_of(QUESTIONS), endpoint | {"budget_usd": 0}, max_new_tokens=8,
                          cache_path=None, usage_path=None)
    assert chat_server.requests == 0


def test_key_is_nowhere_on_disk_or_in_logs(chat_server, endpoint, tmp_path, caplog, capfd):
    """The server echoes the bearer token in every error body; the job fails once and then succeeds."""
    caplog.set_level(logging.DEBUG)
    echo = {"echo_key": True, "models": (MODEL,)}
    chat_server.set(reply=lambda b: 401 if "首都" in b["messages"][-1]["content"] else model_answer(b), **echo)
    items, cache, usage = items_of(QUESTIONS), str(tmp_path / "c.sqlite"), str(tmp_path / "llm" / "gen.json")
    with pytest.raises(EndpointError) as failed:
        generate_endpoint(items, endpoint, max_new_tokens=8, cache_path=cache, usage_path=usage)
    chat_server.set(reply=model_answer, **echo)
    out = generate_endpoint(items, endpoint, max_new_tokens=8, cache_path=cache, usage_path=usage)
    write_parquet(with_items(out, items), tmp_path / "generations.parquet")
    chat_server.set(models_status=401, **echo)
    with pytest.raises(EndpointError) as refused:
        generate_endpoint(items, endpoint, max_new_tokens=99, cache_path=cache, usage_path=usage)
    # The key was in play: echoed back by the server, masked in what we log and raise.
    assert "Bearer ***" in caplog.text and "Bearer ***" in str(refused.value)
    captured = capfd.readouterr()
    for name, text in {"logs": caplog.text, "stdout": captured.out, "stderr": captured.err,
                       "first error": str(failed.value), "second error": str(refused.value)}.items():
        assert SECRET not in text, f"key leaked into {name}"
    files = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert len(files) >= 3
    for name, data in files.items():
        assert SECRET.encode() not in data, f"key leaked into {name}"


def test_endpoint_config_overrides_per_model():
    generation = {"max_new_tokens": 64, "backend": "openai", "base_url": "http://a/v1", "model": "m",
                  "api_key_env": "K", "overrides": {"base": {"base_url": "http://b/v1", "concurrency": 2}}}
    assert endpoint_config(generation, "base") == {"base_url": "http://b/v1", "model": "m", "api_key_env": "K",
                                                   "concurrency": 2, "timeout": 600, "temperature": 0.0}
    assert endpoint_config(generation, "sft1")["base_url"] == "http://a/v1"
    # A compare: entry is an endpoint config too: its name, backend and path are not sent anywhere.
    reference = {"name": "qwen", "backend": "openai", "base_url": "http://q/v1", "model": "q", "api_key_env": "K"}
    assert endpoint_config(reference) == {"base_url": "http://q/v1", "model": "q", "api_key_env": "K",
                                          "concurrency": 32, "timeout": 600, "temperature": 0.0}
    assert generate_endpoint([], {"model": "m"}, max_new_tokens=1, cache_path=None, usage_path=None).height == 0


def check_config(**parts) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8")) | parts
    validate(config, str(REPO / "config.schema.yaml"))
    return config


def test_schema_generation_and_compare():
    config = check_config()
    assert config["compare"] == [] and config["generation"]["serve"]["enabled"] is False
    assert config["generation"]["serve"]["command"] == "vllm serve {model_dir} --host 127.0.0.1 --port {port}"
    openai_gen = {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key_env": "K",
                  "concurrency": 64, "overrides": {"base": {"model": "n"}}}
    assert endpoint_config(check_config(generation=openai_gen)["generation"], "base")["model"] == "n"
    check_config(compare=[{"name": "qwen2-7b", "backend": "openai", "base_url": "http://h/v1", "model": "q",
                           "api_key_env": "K"}, {"name": "local-ref", "backend": "local", "path": "/models/x"}])
    for parts, needle in [({"generation": {"backend": "openai", "model": "m"}}, "'base_url' is a required property"),
                          ({"generation": {"serve": {"comand": "x"}}}, "'comand' was unexpected"),
                          ({"compare": [{"name": "r", "backend": "local"}]}, "'path' is a required property"),
                          ({"compare": [{"name": "r", "backend": "openai", "base_url": "u", "model": "m",
                                         "api_key_env": "sk-123"}]}, "does not match")]:
        with pytest.raises(Exception) as err:
            check_config(**parts)
        assert needle in str(err.value)
