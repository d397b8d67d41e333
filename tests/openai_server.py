"""A real HTTP server speaking the OpenAI chat completions API, for tests of culturalign.llm.

FastAPI + uvicorn on 127.0.0.1 (a free port), in a background thread. Its behaviour is scripted
per test (fixed reply or a reply function, failing the first N requests, answering an HTTP error,
answering slower than the client's timeout), and it keeps its own request counter and a log of
what it received (headers and body), so tests assert on what really went over the wire.

Tests use the `chat_server` fixture of conftest.py: one server per test session, its script and log
reset per test.

It also stands in for a model server (vLLM) as its own process, for tests of culturalign.evaluate.serve:
`python tests/openai_server.py --port P --model NAME [--latency S] [--startup-delay S] [--never-healthy]`
answers every request with `model_answer` (deterministic, honours max_tokens) and lists NAME at
/v1/models once started; --never-healthy answers 503 there forever.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse


@dataclass
class Raw:
    """A reply function's way to answer 200 with this text as the whole (non-JSON) body."""
    text: str


# A reply function gets the request body and returns the reply text, an int (answer that HTTP
# status), or Raw (a malformed response).
Reply = str | Callable[[dict], "str | int | Raw"]


@dataclass
class Script:
    reply: Reply = "好的。"
    fail_first: int = 0            # the first N requests are answered with fail_status
    fail_status: int = 429
    sleep: float = 0.0             # seconds to wait before answering (longer than the client timeout)
    usage: tuple[int, int] | None = None   # (prompt, completion) tokens; None: count characters
    echo_key: bool = False         # error messages repeat the bearer token, as OpenAI's 401 does
    models: tuple[str, ...] = ("judge-model",)   # what GET /v1/models lists
    models_status: int = 200       # anything else: /v1/models answers this error (a server not yet healthy)


@dataclass
class Received:
    headers: dict[str, str]
    body: str


@dataclass
class ChatServer:
    script: Script = field(default_factory=Script)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    model_lists: int = 0           # GET /v1/models requests (not in `received`: chat completions only)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def judge_config(self, api_key_env: str, **overrides) -> dict:
        """A judges: entry pointing at this server, with test-sized timeouts and backoff."""
        return {"backend": "openai", "base_url": self.url, "model": "judge-model", "api_key_env": api_key_env,
                "concurrency": 2, "timeout": 5, "backoff": 0.01, "backoff_max": 0.05} | overrides

    @property
    def requests(self) -> int:
        """How many chat completion requests arrived (the server's own count)."""
        return len(self.received)

    @property
    def auth_headers(self) -> list[str | None]:
        return [r.headers.get("authorization") for r in self.received]

    def set(self, **script) -> None:
        """A fresh script (unset fields take their defaults) and an empty log."""
        self.script = Script(**script)
        self.received.clear()
        self.model_lists = 0

    def respond(self, body: dict) -> tuple[int, dict | Raw]:
        number = len(self.received)   # this request's number (it is already logged)
        if number <= self.script.fail_first:
            return self.script.fail_status, self.error(self.script.fail_status)
        reply = self.script.reply(body) if callable(self.script.reply) else self.script.reply
        if isinstance(reply, int):
            return reply, self.error(reply)
        if isinstance(reply, Raw):
            return 200, reply
        prompt, completion = self.script.usage or (
            sum(len(m.get("content") or "") for m in body["messages"]), len(reply))
        return 200, {
            "id": f"chatcmpl-{number}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }

    def error(self, status: int, authorization: str | None = None) -> dict:
        """An error body; with echo_key it repeats `authorization` (default: the last chat request's)."""
        message = f"scripted failure {status}"
        if self.script.echo_key:
            message += f"; incorrect API key provided: {authorization or self.auth_headers[-1]}"
        return {"error": {"message": message, "type": "test_error", "code": status}}


def model_answer(body: dict) -> str:
    """The stand-in model: a deterministic answer built from the last question, cut to max_tokens
    characters (one character = one token here), so answers differ per item and length limits show."""
    question = body["messages"][-1]["content"]
    answer = f"回答：{question}。这是一个确定的回答。"
    return answer[:body["max_tokens"]] if body.get("max_tokens") else answer


def build_app(server: ChatServer) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        server.model_lists += 1
        status = server.script.models_status
        if status != 200:
            return JSONResponse(server.error(status, request.headers.get("authorization")), status_code=status)
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                                                        for m in server.script.models]})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        raw = (await request.body()).decode("utf-8")
        server.received.append(Received(dict(request.headers), raw))
        if server.script.sleep:
            await asyncio.sleep(server.script.sleep)
        status, payload = server.respond(await request.json())
        if isinstance(payload, Raw):
            return PlainTextResponse(payload.text, status_code=status)
        return JSONResponse(payload, status_code=status)

    return app


def start(server: ChatServer) -> tuple[uvicorn.Server, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))        # the OS picks a free port
    server.port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(server), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test OpenAI server did not start")
        time.sleep(0.02)
    return uv, thread


def main() -> None:
    """Serve as a separate process, the way `vllm serve` would (blocks until terminated)."""
    parser = argparse.ArgumentParser(description="stand-in for an OpenAI-compatible model server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True, help="the model name /v1/models lists")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds before listening")
    parser.add_argument("--never-healthy", action="store_true", help="/v1/models answers 503 forever")
    args = parser.parse_args()
    time.sleep(args.startup_delay)   # a model server loads its weights before it listens
    server = ChatServer(Script(reply=model_answer, sleep=args.latency, models=(args.model,),
                               models_status=503 if args.never_healthy else 200), port=args.port)
    uvicorn.run(build_app(server), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
