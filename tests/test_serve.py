"""A model server started inside the generate job, with tests/openai_server.py run as its own process
standing in for `vllm serve`: start and health wait, generation through it, a server that never becomes
healthy or dies at start, cleanup after every failure (no process left), a missing command -> fallback."""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from culturalign.evaluate.endpoint import EndpointError
from culturalign.evaluate.generate import COLUMNS
from culturalign.io import read_json
from culturalign.evaluate.serve import ServeError, generate_served, server_argv, serving
from openai_server import model_answer

REPO = Path(__file__).resolve().parents[1]
STAND_IN = f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'tests' / 'openai_server.py'))} " \
           "--port {port} --model {model_dir}"
ITEMS = [{"id": f"q{i}", "question": q, "history": []} for i, q in enumerate(["长城有多长？", "春节吃什么？", "你好"])]


@pytest.fixture
def model_dir(tmp_path) -> str:
    path = tmp_path / "model dir"      # a space: the command's words are filled in one by one
    path.mkdir()
    return str(path)


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line mentions `marker` (the model directory: the server's)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:   # gone meanwhile
            pass
    return found


def test_generates_through_a_started_server_then_stops_it(model_dir, tmp_path):
    usage, server_log = tmp_path / "usage.json", tmp_path / "logs" / "server.log"
    out = generate_served(model_dir, ITEMS, max_new_tokens=6, usage_path=str(usage), log_path=str(server_log),
                          serve={"command": STAND_IN + " --startup-delay 1", "health_timeout": 60})
    assert out.schema == pl.Schema(COLUMNS) and out["id"].to_list() == ["q0", "q1", "q2"]
    assert out["answer"].to_list() == [model_answer({"messages": [{"content": it["question"]}], "max_tokens": 6})
                                       for it in ITEMS]
    assert read_json(usage)["requests"] == 4           # the model check and three answers
    assert server_log.is_file() and processes_with(model_dir) == []


def test_never_healthy_server_times_out_and_is_stopped(model_dir):
    began = time.monotonic()
    with pytest.raises(ServeError, match=r"not healthy after 3s \(GET /models: HTTP 503\).*health_timeout"):
        generate_served(model_dir, ITEMS, max_new_tokens=6,
                        serve={"command": STAND_IN + " --never-healthy", "health_timeout": 3})
    assert time.monotonic() - began < 20 and processes_with(model_dir) == []


def test_server_dying_at_start_is_reported_with_its_log(model_dir):
    crash = f"{shlex.quote(sys.executable)} -c 'import sys; print(\"CUDA out of memory\"); sys.exit(3)' {{model_dir}}"
    with pytest.raises(ServeError, match=r"(?s)exited with code 3 before it became healthy.*CUDA out of memory"):
        generate_served(model_dir, ITEMS, max_new_tokens=6, serve={"command": crash, "health_timeout": 30})


def test_failure_during_generation_stops_the_server(model_dir):
    """Answers slower than the client's timeout, no retries: the generation fails, the server goes."""
    with pytest.raises(EndpointError, match="3 of 3 items got no answer"):
        generate_served(model_dir, ITEMS, max_new_tokens=6, serve={"command": STAND_IN + " --latency 2",
                                                                   "timeout": 0.3, "max_retries": 0})
    assert processes_with(model_dir) == []
    with pytest.raises(RuntimeError, match="boom"), serving(model_dir, {"command": STAND_IN}) as served:
        assert processes_with(model_dir) == [served.pid] and served.model == model_dir
        raise RuntimeError("boom")
    assert processes_with(model_dir) == []


def test_cancelled_job_stops_the_server(model_dir, tmp_path):
    """SIGTERM to the generating process (what a cancelled job gets) still stops the server; one that
    drains its requests (here: 60 s each) longer than stop_timeout is killed."""
    driver = tmp_path / "driver.py"
    serve = {"command": STAND_IN + " --latency 60", "timeout": 120, "stop_timeout": 2}
    driver.write_text("from culturalign.evaluate.serve import generate_served\n"
                      f"generate_served({model_dir!r}, {ITEMS!r}, max_new_tokens=6, serve={serve!r})\n",
                      encoding="utf-8")
    job = subprocess.Popen([sys.executable, str(driver)], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while not processes_with(model_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(model_dir), "the stand-in server never started"
    time.sleep(2)                    # healthy and answering slowly by now
    job.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert job.wait(30) == 128 + signal.SIGTERM and time.monotonic() - began < 10
    assert processes_with(model_dir) == []


def test_missing_command_signals_fallback(model_dir, caplog):
    caplog.set_level(logging.WARNING)
    assert generate_served(model_dir, ITEMS, max_new_tokens=6,
                           serve={"command": "no-such-server-7f3a serve {model_dir} --port {port}"}) is None
    assert "'no-such-server-7f3a'" in caplog.text and "in-process" in caplog.text
    assert processes_with(model_dir) == []
    if shutil.which("vllm") is None:     # the default command, where vLLM is not installed (here)
        assert generate_served(model_dir, ITEMS, max_new_tokens=6, serve={}) is None


def test_command_words_filled_one_by_one():
    assert server_argv("vllm serve {model_dir} --port {port} --served-model-name 'my model'", "/m/a b", 8001) == [
        "vllm", "serve", "/m/a b", "--port", "8001", "--served-model-name", "my model"]


def test_generate_answers_dispatch(tiny_model, tmp_path, caplog):
    """The generate rule's one entry point: a served model when serve is on (the stand-in answers), and
    in-process generation when the server command is missing, with the same table either way."""
    from culturalign.evaluate.generate import generate
    from culturalign.evaluate.serve import generate_answers

    generation = {"max_new_tokens": 6, "batch_size": 3, "backend": "auto"}
    served = generate_answers(tiny_model, ITEMS, generation | {"serve": {"enabled": True, "command": STAND_IN,
                                                                         "health_timeout": 60}})
    assert served["answer"].to_list() == [model_answer({"messages": [{"content": it["question"]}],
                                                        "max_tokens": 6}) for it in ITEMS]
    with caplog.at_level(logging.WARNING):
        fallback = generate_answers(tiny_model, ITEMS, generation | {"serve": {
            "enabled": True, "command": "no-such-server-7f3a serve {model_dir} --port {port}"}})
    assert "not installed" in caplog.text
    in_process = generate(tiny_model, ITEMS, max_new_tokens=6, batch_size=3)
    assert fallback["answer"].to_list() == in_process["answer"].to_list()
    assert fallback.schema == served.schema == in_process.schema
