"""One client for every LLM call of the workflow (refinement and the LLM judges).

`make_backend(judge_cfg, cache_path, usage_path)` returns a Backend whose `complete(batch)` turns a
list of chat conversations into a list of replies (None = no reply). Two kinds:

- "openai": any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama) through `AsyncOpenAI`, with bounded
  concurrency, retries with exponential backoff and jitter, a per-request timeout, and a budget cap.
- "hf": a local Hugging Face causal LM, in-process, batched generation with its chat template.

Both share a sqlite cache keyed by the sha256 of the full request (backend kind, base_url, model,
messages, parameters, attempt), so a rerun never sends a request already answered, and both write
their token usage and estimated cost as JSON. The API key is read only from the environment
variable named in the config; it is never part of a cache key, a log line, an error message or a file.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import openai
from tqdm import tqdm

from culturalign.hf import chat_prompts, encode, generate_batched, load_chat_model
from culturalign.io import write_json

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
PROGRESS_MIN = 50          # a progress bar only for batches at least this large
RETRY_STATUS = {408, 409, 429}   # plus every 5xx: transient by HTTP semantics


class LLMError(RuntimeError):
    """An LLM call failed in a way that is not one item's failure (those give None)."""


class LLMConfigError(ValueError):
    """A judge/refinement backend is misconfigured (missing key variable, unknown backend ...)."""


# --------------------------------------------------------------------------------------------- cache

class Cache:
    """Replies on disk in sqlite, safe to share between processes of one machine.

    WAL lets readers proceed while one process writes; the busy timeout makes concurrent writers
    wait instead of failing. (sqlite's WAL needs shared memory, so keep the file on a local or
    cluster file system that supports POSIX locking, not on plain NFS.) Every reply is committed as
    soon as it arrives, so a job that is killed keeps all the work it finished.
    """

    def __init__(self, path: str | os.PathLike | None):
        path = ":memory:" if path is None else str(path)   # None: no cache kept beyond this backend
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 60000")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL, "
                        "prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")

    def get_many(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):   # stay below sqlite's bound-variable limit
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk))
        return found

    def put(self, key: str, reply: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                        (key, reply, prompt_tokens, completion_tokens, time.time()))

    def close(self) -> None:
        self.db.close()


def request_key(kind: str, base_url: str | None, model: str, messages: Messages, params: dict,
                attempt: int) -> str:
    """sha256 of everything that determines the reply -- and nothing secret (the key is not in it)."""
    request = {"backend": kind, "base_url": base_url, "model": model, "attempt": attempt,
               "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
               "params": params}
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------- usage

@dataclass
class Usage:
    backend: str
    model: str
    requests: int = 0            # requests actually sent (openai: HTTP requests, retries included)
    retries: int = 0
    cache_hits: int = 0
    failed: int = 0              # items left without a reply after all retries
    budget_skipped: int = 0      # items not sent because the budget was spent
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    budget_usd: float | None = None
    budget_exhausted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "cost_usd": round(self.cost_usd, 6)}


# --------------------------------------------------------------------------------------------- base

class Backend:
    """Shared part: cache look-up, de-duplication, usage file. Subclasses answer the misses."""

    kind = ""

    def __init__(self, model: str, base_url: str | None, cache_path: str | None, usage_path: str | None,
                 budget_usd: float | None = None):
        self.model, self.base_url = model, base_url
        self.cache = Cache(cache_path)
        self.usage_path = usage_path
        self.usage = Usage(backend=self.kind, model=model, budget_usd=budget_usd)

    def complete(self, batch: list[Messages], *, attempt: int = 0, **params: Any) -> list[str | None]:
        """Replies to `batch`, in order; None where no reply could be had (failure or budget).

        `attempt` is part of the cache key: a caller that could not parse a reply asks again with
        attempt+1 and gets a fresh request instead of the cached unparseable reply.
        """
        keys = [request_key(self.kind, self.base_url, self.model, m, params, attempt) for m in batch]
        replies = self.cache.get_many(keys)
        self.usage.cache_hits += sum(k in replies for k in keys)
        todo = {k: m for k, m in zip(keys, batch) if k not in replies}   # identical requests sent once
        try:
            if todo:
                self._answer(todo, params, attempt, replies)
        finally:
            self.write_usage()   # also when something escapes: what was spent is on record
        log.info("llm %s/%s: %d items, %d from cache, %d sent, %d failed, %d skipped (budget), "
                 "cost so far $%.4f", self.kind, self.model, len(batch), len(batch) - len(todo),
                 len(todo), self.usage.failed, self.usage.budget_skipped, self.usage.cost_usd)
        return [replies.get(k) for k in keys]

    def _answer(self, todo: dict[str, Messages], params: dict, attempt: int,
                replies: dict[str, str]) -> None:
        """Fill `replies` for the keys of `todo` it can answer, storing each in the cache."""
        raise NotImplementedError

    def _store(self, key: str, reply: str, prompt_tokens: int, completion_tokens: int,
               replies: dict[str, str]) -> None:
        self.cache.put(key, reply, prompt_tokens, completion_tokens)
        replies[key] = reply
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens

    def write_usage(self) -> None:
        if self.usage_path:
            write_json(self.usage.as_json(), self.usage_path)

    def close(self) -> None:
        self.cache.close()


# --------------------------------------------------------------------------------------------- openai

class OpenAIBackend(Backend):
    """OpenAI-compatible chat completions.

    Retries are ours, not the SDK's (it gets max_retries=0): so each HTTP request is counted in
    the usage file, the backoff is configurable (`backoff`, `backoff_max` seconds; short in tests),
    and the budget is checked before every new item. Retried: 408, 409, 429, 5xx, timeouts and
    connection errors; a `Retry-After` header is honoured up to `backoff_max`. Other errors
    (400, 401, 404 ...) are not transient and fail the item at once.
    """

    kind = "openai"

    def __init__(self, cfg: dict, cache_path: str | None, usage_path: str | None):
        for field in ("model", "api_key_env"):
            if not cfg.get(field):
                raise LLMConfigError(f"openai judge: '{field}' is required in the judge config")
        var = cfg["api_key_env"]
        key = os.environ.get(var)
        if not key:
            raise LLMConfigError(f"openai judge: environment variable {var} (named by api_key_env) "
                                 "is not set or empty; export the API key in it")
        super().__init__(cfg["model"], cfg.get("base_url"), cache_path, usage_path,
                         budget_usd=cfg.get("budget_usd"))
        self._key = key
        self.concurrency = int(cfg.get("concurrency", 8))
        self.timeout = float(cfg.get("timeout", 60))
        self.max_retries = int(cfg.get("max_retries", 5))
        self.backoff = float(cfg.get("backoff", 1.0))
        self.backoff_max = float(cfg.get("backoff_max", 30.0))
        price = cfg.get("price_per_1k") or {}
        self.price_in = float(price.get("input", 0.0)) / 1000
        self.price_out = float(price.get("output", 0.0)) / 1000
        self._max_item_cost = 0.0     # largest cost of one answered item: the estimate for the next
        self._reserved = 0.0          # estimated cost of the requests in flight

    def scrub(self, text: str) -> str:
        """`text` with the API key masked: for every message we log or raise."""
        return text.replace(self._key, "***")

    def _answer(self, todo, params, attempt, replies):
        try:
            _run_sync(self._answer_async(todo, params, replies))
        except Exception as err:
            # Whatever escapes (a bug, bad params) must not carry the key out in its message.
            if any(self._key in str(e) for e in _chain(err)):
                raise LLMError(self.scrub(f"{type(err).__name__}: {err}")) from None
            raise

    async def _answer_async(self, todo: dict[str, Messages], params: dict, replies: dict[str, str]) -> None:
        sem = asyncio.Semaphore(self.concurrency)
        bar = tqdm(total=len(todo), desc=f"llm {self.model}", file=sys.stderr,
                   disable=len(todo) < PROGRESS_MIN)
        client = openai.AsyncOpenAI(api_key=self._key, base_url=self.base_url, timeout=self.timeout,
                                    max_retries=0)
        try:
            async with client:
                await asyncio.gather(*(self._one(client, sem, bar, k, m, params, replies)
                                       for k, m in todo.items()))
        finally:
            bar.close()

    async def _one(self, client: openai.AsyncOpenAI, sem: asyncio.Semaphore, bar: tqdm, key: str,
                   messages: Messages, params: dict, replies: dict[str, str]) -> None:
        async with sem:
            reserved = self._reserve()
            if reserved is None:
                self.usage.budget_skipped += 1
                bar.update()
                return
            try:
                response = await self._send(client, messages, params)
            finally:
                self._reserved -= reserved
            answer = self._parse(response) if response is not None else None
            if answer is None:
                self.usage.failed += 1
            else:
                self._record(key, *answer, replies)
            bar.update()

    def _reserve(self) -> float | None:
        """Book the estimated cost of one more item (returned), or None if it would exceed the budget.

        The estimate is the largest cost of an item seen so far, so with `concurrency` requests in
        flight before the first answer arrives the cap can be overshot by at most those requests.
        Once refused, nothing more is sent: the stop is final for this job. A budget of 0 sends nothing.
        """
        budget = self.usage.budget_usd
        if self.usage.budget_exhausted:
            return None
        over = budget is not None and (budget <= 0 or self.usage.cost_usd + self._reserved
                                       + self._max_item_cost > budget)
        if over:
            self.usage.budget_exhausted = True
            log.warning("llm %s: budget of $%.4f reached (spent $%.4f); sending no more requests",
                        self.model, budget, self.usage.cost_usd)
            return None
        self._reserved += self._max_item_cost
        return self._max_item_cost

    async def _send(self, client: openai.AsyncOpenAI, messages: Messages, params: dict):
        """One item: the request with retries. Returns the response, or None after the last failure."""
        for retry in range(self.max_retries + 1):
            self.usage.requests += 1
            try:
                return await client.chat.completions.create(model=self.model, messages=messages, **params)
            except openai.OpenAIError as err:   # timeouts and connection errors included
                transient = retryable(err)
                if not transient or retry == self.max_retries:
                    why = "not retryable" if not transient else f"gave up after {retry + 1} attempts"
                    log.warning("llm %s: request failed (%s): %s", self.model, why, self._describe(err))
                    return None
                self.usage.retries += 1
                delay = self._delay(retry, err)
                log.info("llm %s: %s; retry %d/%d in %.2fs", self.model, self._describe(err),
                         retry + 1, self.max_retries, delay)
                await asyncio.sleep(delay)
        return None

    def _describe(self, err: Exception) -> str:
        status = getattr(err, "status_code", None)
        return self.scrub(f"{type(err).__name__}{f' {status}' if status else ''}: {err}")[:500]

    def _delay(self, retry: int, err: Exception) -> float:
        """Exponential backoff with jitter (half fixed, half random), or the server's Retry-After."""
        response = getattr(err, "response", None)
        after = response.headers.get("retry-after") if response is not None else None
        if after:
            try:
                return min(float(after), self.backoff_max)
            except ValueError:
                pass   # an HTTP date: fall back to our own backoff
        delay = min(self.backoff * 2 ** retry, self.backoff_max)
        return delay / 2 + random.uniform(0, delay / 2)

    def _parse(self, response: Any) -> tuple[str, int, int] | None:
        """(reply, prompt tokens, completion tokens), or None for a response that is no chat completion
        (the SDK hands a non-JSON body through as a string)."""
        try:
            message = response.choices[0].message
            usage = response.usage
        except (AttributeError, IndexError, TypeError):
            log.warning("llm %s: malformed response: %s", self.model, self.scrub(repr(response))[:200])
            return None
        # A reply without text (e.g. a tool call) is a valid, empty answer: the caller's parser
        # decides, and can ask again with another attempt.
        return (message.content or "", usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0)

    def _record(self, key: str, reply: str, prompt: int, completion: int, replies: dict[str, str]) -> None:
        cost = prompt * self.price_in + completion * self.price_out
        self.usage.cost_usd += cost
        self._max_item_cost = max(self._max_item_cost, cost)
        self._store(key, reply, prompt, completion, replies)


def _chain(err: BaseException) -> list[BaseException]:
    """`err` and the exceptions it was raised from or while handling."""
    seen: list[BaseException] = []
    while err is not None and err not in seen:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


def _transient(status: int) -> bool:
    return status in RETRY_STATUS or status >= 500


def retryable(err: Exception) -> bool:
    """Whether an OpenAI client error may go away on retry: a timeout or connection error, or a
    rate-limit / server-side status."""
    return isinstance(err, openai.APIConnectionError) or (
        isinstance(err, openai.APIStatusError) and _transient(err.status_code))


def _run_sync(coro) -> Any:
    """asyncio.run, also from code that already runs an event loop (e.g. a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --------------------------------------------------------------------------------------------- hf

class HFBackend(Backend):
    """A local causal LM, in-process: batched generation with its chat template, left padding.

    Attempt 0 is greedy; a later attempt (a caller asking again after an unparseable reply) samples
    with a seed equal to the attempt, so it can differ and is still reproducible. `max_tokens` or
    `max_new_tokens` in the call's params override the config's max_new_tokens.
    """

    kind = "hf"

    def __init__(self, cfg: dict, cache_path: str | None, usage_path: str | None):
        if not cfg.get("path"):
            raise LLMConfigError("hf judge: 'path' (a local Hugging Face model directory) is required")
        super().__init__(str(cfg["path"]), None, cache_path, usage_path)
        self.batch_size = int(cfg.get("batch_size", 8))
        self.max_new_tokens = int(cfg.get("max_new_tokens", 64))
        self._model = self._tokenizer = None

    def _load(self) -> None:
        """Load the model only when some request is not cached: a fully cached rerun needs no model."""
        if self._model is not None:
            return
        if not Path(self.model).is_dir():
            raise LLMConfigError(f"hf judge: model directory {self.model} does not exist")
        self._model, self._tokenizer = load_chat_model(self.model)

    def _answer(self, todo, params, attempt, replies):
        self._load()
        max_new = int(params.get("max_new_tokens", params.get("max_tokens", self.max_new_tokens)))
        # Attempt 0 greedy (unless the call asks for a temperature); a retry samples, seeded by the attempt.
        temperature = (params.get("temperature") or 0.7) if attempt > 0 else (params.get("temperature") or None)
        keys = list(todo)
        encoded = encode(self._tokenizer, chat_prompts(self._tokenizer, [todo[k] for k in keys]))
        rows = generate_batched(self._model, self._tokenizer, encoded, max_new_tokens=max_new,
                                batch_size=self.batch_size, temperature=temperature, seed=attempt,
                                progress=len(todo) >= PROGRESS_MIN)
        for key, row in zip(keys, rows):
            self._store(key, row["answer"], row["prompt_tokens"], row["answer_tokens"], replies)
        self.usage.requests += len(keys)


# --------------------------------------------------------------------------------------------- factory

def make_backend(judge_cfg: dict, cache_path: str | None, usage_path: str | None = None) -> Backend:
    """The backend a judge config names: {"backend": "openai", ...} or {"backend": "hf", ...}.

    `cache_path`: the sqlite cache shared by all jobs (None: a throw-away in-memory cache).
    `usage_path`: this backend's usage JSON, rewritten after every `complete` with the totals of this
    backend object -- one backend per usage file (a second backend on the same path overwrites it).
    """
    kind = judge_cfg.get("backend")
    if kind == "openai":
        return OpenAIBackend(judge_cfg, cache_path, usage_path)
    if kind == "hf":
        return HFBackend(judge_cfg, cache_path, usage_path)
    raise LLMConfigError(f"judge backend '{kind}' does not call an LLM (expected 'openai' or 'hf')")
