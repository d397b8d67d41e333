"""Shared fixtures: where the repository and the real public data (../shared/data) are, the one tiny
model, the OpenAI-compatible test server, and the one stand-in for Snakemake's `snakemake` object."""
from __future__ import annotations

import runpy
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openai_server import ChatServer, start
from snakemake.iocontainers import Namedlist
from tiny_model import make_tiny

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = (REPO / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip(f"real benchmark data absent: {path} (only present beside the project checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny Llama model + tokenizer with the chat template (tests/tiny_model.py), built once per session."""
    return make_tiny(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def _chat_server_session() -> Iterator[ChatServer]:
    server = ChatServer()
    uv, thread = start(server)
    yield server
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def chat_server(_chat_server_session: ChatServer) -> ChatServer:
    """The session's OpenAI-compatible server on 127.0.0.1, its script and request log reset."""
    _chat_server_session.set()
    return _chat_server_session


class FakeSnakemake:
    """What a rule script sees as `snakemake`: input, output, params, wildcards, log as Snakemake's own
    Namedlist (a dict becomes named entries, a list positional ones), and threads."""

    def __init__(self, log: str, threads: int = 1, **parts: dict | list):
        for part in ("input", "output", "params", "wildcards"):
            value = parts.pop(part, {})
            setattr(self, part, Namedlist(fromdict=value) if isinstance(value, dict) else Namedlist(value))
        if parts:
            raise TypeError(f"unknown snakemake parts: {sorted(parts)}")
        self.log, self.threads = Namedlist([log]), threads


@pytest.fixture
def run_script(tmp_path) -> Callable[..., None]:
    """run_script(name, input=..., output=..., params=..., wildcards=...): scripts/<name>.py as Snakemake
    runs it, with its log in tmp_path/<name>.log."""
    def run(name: str, **parts: dict | list) -> None:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)   # scripts/<stage>/<rule>: a log folder per stage
        smk = FakeSnakemake(str(tmp_path / f"{name}.log"), **parts)
        runpy.run_path(str(REPO / "scripts" / f"{name}.py"), init_globals={"snakemake": smk})
    return run
