"""Serve a model directory inside the generate job: start a server, generate through it, stop it.

`generate_served(model_dir, items, max_new_tokens=..., serve=...)` starts the configured command
(default `vllm serve {model_dir} --host 127.0.0.1 --port {port}`; SGLang or TGI work the same way) on
a free port, waits until GET /v1/models answers with a model, sends every item through
`culturalign.evaluate.endpoint.generate_endpoint` (many requests in flight: continuous batching), and stops the
server's whole process group -- also when anything fails, and when the job itself is terminated.
It returns the same table as in-process generation, or None when the command is not installed: the
caller then generates in-process.

The server gets a fresh random API key (VLLM_API_KEY in its environment, honoured by vLLM), so no
other user of a shared node can use it; the key lives only in the two processes' environments.
A served generation is not cached across jobs: the model directory of a pipeline model keeps its
path when the model is retrained, so a cache keyed by it would return the old model's answers.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from culturalign.evaluate.endpoint import DEFAULTS, generate_endpoint
from culturalign.evaluate.generate import COLUMNS

log = logging.getLogger(__name__)

DEFAULT_COMMAND = "vllm serve {model_dir} --host 127.0.0.1 --port {port}"
KEY_VAR = "CULTURALIGN_SERVE_API_KEY"      # the client reads the server's key from here
SERVE_DEFAULTS = {"command": DEFAULT_COMMAND, "port": None, "health_timeout": 1800.0, "stop_timeout": 30.0,
                  "concurrency": 64}
POLL_S = 0.5            # between health checks
LOG_TAIL = 20           # server log lines quoted in an error
ENDPOINT_KEYS = ("concurrency", "timeout", "max_retries", "backoff", "backoff_max", "temperature")


class ServeError(RuntimeError):
    """The server did not start, did not become healthy in time, or serves no usable model."""


@dataclass
class Served:
    base_url: str
    model: str        # the name the server lists for the model directory
    pid: int          # the server process, leader of its own process group


def server_argv(command: str, model_dir: str, port: int) -> list[str]:
    """The command split like a shell would, then {model_dir} and {port} filled in per word (so a
    path with spaces stays one argument)."""
    return [word.format(model_dir=model_dir, port=port) for word in shlex.split(command)]


def generate_served(model_dir: str, items: list[dict], *, max_new_tokens: int, serve: dict,
                    usage_path: str | None = None, log_path: str | None = None) -> pl.DataFrame | None:
    """Answers of the model in `model_dir` through a server started for this call, or None when the
    server command is not installed (logged; the caller falls back to in-process generation).

    `serve`: command, port (None: a free one), health_timeout, stop_timeout (seconds), and the
    endpoint's concurrency, timeout, max_retries, backoff, backoff_max, temperature.
    `log_path`: where the server's output goes (None: a temporary file, quoted on failure, then removed).
    """
    cfg = SERVE_DEFAULTS | serve
    program = shlex.split(cfg["command"])[0]
    if shutil.which(program) is None:
        log.warning("serve: %r (from the command %r) is not installed or not on PATH; generating in-process "
                    "instead", program, cfg["command"])
        return None
    if not items:
        return pl.DataFrame(schema=COLUMNS)
    with serving(model_dir, cfg, log_path) as served:
        endpoint = DEFAULTS | {k: cfg[k] for k in ENDPOINT_KEYS if k in cfg} | {
            "base_url": served.base_url, "model": served.model, "api_key_env": KEY_VAR}
        return generate_endpoint(items, endpoint, max_new_tokens=max_new_tokens, cache_path=None,
                                 usage_path=usage_path)


@contextlib.contextmanager
def serving(model_dir: str, serve: dict, log_path: str | None = None) -> Iterator[Served]:
    """A healthy server on `model_dir` for the duration of the block; stopped however the block ends."""
    cfg = SERVE_DEFAULTS | serve
    port = int(cfg["port"] or free_port())
    argv = server_argv(cfg["command"], model_dir, port)
    key = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-")) + "/server.log"
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        out = stack.enter_context(open(log_path, "ab"))
        stack.enter_context(_terminate_raises())
        stack.enter_context(_environment(KEY_VAR, key))
        log.info("serve: starting %s (output in %s)", shlex.join(argv), log_path)
        # Its own process group: the server's workers (vLLM starts several) are stopped together.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=os.environ | {"VLLM_API_KEY": key})
        stack.callback(_stop, proc, float(cfg["stop_timeout"]))
        base_url = f"http://127.0.0.1:{port}/v1"
        listed = _wait_healthy(proc, base_url, key, float(cfg["health_timeout"]), log_path)
        yield Served(base_url, _served_model(listed, model_dir, base_url), proc.pid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, base_url: str, key: str, timeout: float, log_path: str) -> list[str]:
    """The model names the server lists, once it answers; ServeError if it exits or the time is up."""
    began = time.monotonic()
    request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {key}"})
    while True:
        code = proc.poll()
        if code is not None:
            raise ServeError(f"serve: the server exited with code {code} before it became healthy; "
                             f"{_tail(log_path)}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                listed = [m["id"] for m in json.load(response)["data"]]
            if listed:
                log.info("serve: healthy after %.1fs at %s, serving %s", time.monotonic() - began, base_url, listed)
                return listed
            last = "no model listed"
        except urllib.error.HTTPError as err:
            last = f"HTTP {err.code}"
        except (OSError, ValueError, KeyError, TypeError) as err:   # not listening yet, or not yet JSON
            last = type(err).__name__
        if time.monotonic() - began > timeout:
            raise ServeError(f"serve: the server at {base_url} was not healthy after {timeout:g}s "
                             f"(GET /models: {last}); raise serve.health_timeout if loading takes longer; "
                             f"{_tail(log_path)}")
        time.sleep(POLL_S)


def _served_model(listed: list[str], model_dir: str, base_url: str) -> str:
    """The listed name to send: the model directory itself (vLLM, SGLang), else the only one listed."""
    if model_dir in listed:
        return model_dir
    if len(listed) == 1:
        return listed[0]
    raise ServeError(f"serve: the server at {base_url} lists several models and none is {model_dir!r}: "
                     f"{', '.join(map(repr, listed))}")


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("serve: server %d still running %gs after SIGTERM; killing it", proc.pid, grace)
    # Workers may outlive their leader: the group goes in any case.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.info("serve: server %d stopped (exit code %s)", proc.pid, proc.returncode)


def _tail(log_path: str) -> str:
    lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL:]
    return f"last lines of its log {log_path}:\n" + "\n".join(lines) if lines else f"its log {log_path} is empty"


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM (a cancelled job) raises SystemExit, so the server is stopped on the way out instead of
    being left running in its own process group. Only the main thread can set a signal handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def generate_answers(model_dir: str | None, items: list[dict], generation: dict, *, endpoint: dict | None = None,
                     cache_path: str | None = None, usage_path: str | None = None,
                     log_path: str | None = None) -> pl.DataFrame:
    """A model's answers, whichever way the config says: through `endpoint` (an OpenAI-compatible server
    already running), through a server started on `model_dir` (generation.serve.enabled; in-process when
    its command is missing), or in-process (transformers / vLLM). Same table every way.

    `cache_path` is used for endpoints only: a reference model's answers never change, while a pipeline
    model retrained under the same name must not get its predecessor's cached answers."""
    from culturalign.evaluate.generate import generate

    max_new_tokens = generation["max_new_tokens"]
    if endpoint is not None:
        return generate_endpoint(items, endpoint, max_new_tokens=max_new_tokens, cache_path=cache_path,
                                 usage_path=usage_path)
    if (generation.get("serve") or {}).get("enabled"):
        served = generate_served(model_dir, items, max_new_tokens=max_new_tokens, serve=generation["serve"],
                                 usage_path=usage_path, log_path=log_path)
        if served is not None:
            return served
    backend = generation.get("backend", "auto")
    return generate(model_dir, items, max_new_tokens=max_new_tokens, batch_size=generation["batch_size"],
                    backend="auto" if backend == "openai" else backend)
