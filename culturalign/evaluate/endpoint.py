"""Answers of a model behind an OpenAI-compatible endpoint (vLLM, SGLang, TGI, OpenAI ...).

`generate_endpoint(items, endpoint, max_new_tokens=..., cache_path=..., usage_path=...)` returns the
same table as `culturalign.evaluate.generate.generate` (id, prompt, answer, prompt_tokens, answer_tokens,
latency_s), one row per item in the items' order, so scoring cannot tell the two apart. The requests
go through the judges' client (`culturalign.llm.OpenAIBackend`): bounded concurrency, retries with
backoff on 408/409/429/5xx and connection errors, the sqlite cache keyed by the full request (a rerun
sends nothing), a budget, and a usage/cost JSON. The key is read from the variable named by
`api_key_env` and is never written anywhere.

Differences from in-process generation, by design:
- the server applies the model's chat template, so `prompt` holds the conversation sent (JSON of
  the messages), not the rendered template text; `prompt_tokens`/`answer_tokens` are the server's
  usage counts;
- `latency_s` is the wall time of this job's requests (the whole run, as for vLLM in-process).

An item the endpoint could not answer after the retries (transport failure, malformed body, budget
spent) fails the job, naming how many and which: a generations table never has holes. Answered items
stay cached, so the rerun sends only the rest.
"""
from __future__ import annotations

import json
import logging
import time

import openai
import polars as pl

from culturalign.evaluate.generate import COLUMNS, messages_of
from culturalign.llm import LLMError, OpenAIBackend, request_key, retryable

log = logging.getLogger(__name__)

# Generation answers are long and a server with continuous batching wants many requests in flight:
# defaults differ from the judges' (8 in flight, 60 s).
DEFAULTS = {"concurrency": 32, "timeout": 600, "temperature": 0.0}
ENDPOINT_KEYS = ("base_url", "model", "api_key_env", "temperature", "concurrency", "timeout", "max_retries",
                 "backoff", "backoff_max", "budget_usd", "price_per_1k")
SHOWN_IDS = 10   # failed item ids named in an error


class EndpointError(LLMError):
    """The endpoint cannot serve this generation (unreachable, wrong model, items left unanswered)."""


def endpoint_config(generation: dict, model: str | None = None) -> dict:
    """The endpoint settings for pipeline model `model`: the generation block's, then its
    `overrides[model]` on top (e.g. another base_url for one model)."""
    merged = {k: generation[k] for k in ENDPOINT_KEYS if k in generation}
    if model is not None:
        merged |= (generation.get("overrides") or {}).get(model, {})
    return DEFAULTS | merged


class EndpointBackend(OpenAIBackend):
    """The judges' OpenAI client plus the checks a generation job makes before it sends anything."""

    def listed_models(self) -> list[str] | None:
        """The model names GET {base_url}/models lists (None: the endpoint has no model list).

        Retried like a chat request; an endpoint still unreachable after the retries fails the job
        with its URL (never the key).
        """
        client = openai.OpenAI(api_key=self._key, base_url=self.base_url, timeout=self.timeout, max_retries=0)
        retry = 0
        with client:
            while True:
                self.usage.requests += 1
                try:
                    return [m.id for m in client.models.list().data]
                except openai.NotFoundError:
                    return None
                except openai.OpenAIError as err:
                    if not retryable(err) or retry == self.max_retries:
                        raise EndpointError(f"endpoint {self.base_url} unusable after {retry + 1} attempt(s): "
                                            f"{self._describe(err)}") from None
                    delay = self._delay(retry, err)
                    log.info("endpoint %s: %s; retry %d/%d in %.2fs", self.base_url, self._describe(err),
                             retry + 1, self.max_retries, delay)
                    time.sleep(delay)
                    retry += 1

    def check_model(self) -> None:
        """Fail unless the endpoint serves `model` (when it lists its models at all)."""
        listed = self.listed_models()
        if listed is None:
            log.warning("endpoint %s has no model list (404 on /models); not checking model %r",
                        self.base_url, self.model)
        elif self.model not in listed:
            raise EndpointError(self.scrub(f"model {self.model!r} is not served at {self.base_url}; "
                                           f"it lists: {', '.join(map(repr, listed)) or 'no models'}"))

    def token_counts(self, keys: list[str]) -> dict[str, tuple[int, int]]:
        """(prompt, completion) tokens of cached replies -- also those answered by an earlier job."""
        counts: dict[str, tuple[int, int]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):   # sqlite's bound-variable limit
            chunk = unique[start:start + 500]
            rows = self.cache.db.execute("SELECT key, prompt_tokens, completion_tokens FROM replies "
                                         f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            counts.update((k, (p or 0, c or 0)) for k, p, c in rows)
        return counts


def generate_endpoint(items: list[dict], endpoint: dict, *, max_new_tokens: int, cache_path: str | None,
                      usage_path: str | None) -> pl.DataFrame:
    """Answers of the endpoint's model to `items`, one row per item, in the items' order.

    `endpoint`: base_url, model, api_key_env, and optionally temperature (default 0: greedy, as
    in-process), concurrency, timeout, max_retries, backoff, backoff_max, budget_usd, price_per_1k.
    """
    if not items:
        return pl.DataFrame(schema=COLUMNS)
    cfg = DEFAULTS | endpoint
    backend = EndpointBackend(cfg, cache_path, usage_path)
    try:
        conversations = [messages_of(it) for it in items]
        params = {"max_tokens": max_new_tokens, "temperature": float(cfg["temperature"])}
        keys = [request_key(backend.kind, backend.base_url, backend.model, m, params, 0) for m in conversations]
        cached = backend.cache.get_many(keys)
        if len(cached) < len(set(keys)):   # a fully cached rerun sends no request at all, not even this
            backend.check_model()
        log.info("generating %d answers through %s (model %s, %d cached, %d in flight, max_tokens %d)",
                 len(items), backend.base_url, backend.model, len(cached), backend.concurrency, max_new_tokens)
        began = time.perf_counter()
        replies = backend.complete(conversations, **params)
        took = time.perf_counter() - began
        _fail_on_missing(items, replies, backend)
        tokens = backend.token_counts(keys)
    finally:
        backend.write_usage()
        backend.close()
    rows = [{"id": it["id"], "prompt": json.dumps(m, ensure_ascii=False), "answer": reply.strip(),
             "prompt_tokens": tokens[k][0], "answer_tokens": tokens[k][1], "latency_s": took}
            for it, m, k, reply in zip(items, conversations, keys, replies)]
    return pl.DataFrame(rows, schema=COLUMNS)


def _fail_on_missing(items: list[dict], replies: list[str | None], backend: EndpointBackend) -> None:
    missing = [it["id"] for it, r in zip(items, replies) if r is None]
    if not missing:
        return
    usage = backend.usage
    why = (f"budget of ${usage.budget_usd} spent" if usage.budget_exhausted
           else f"failed after {backend.max_retries} retries or malformed replies; see the log")
    shown = ", ".join(missing[:SHOWN_IDS]) + (" ..." if len(missing) > SHOWN_IDS else "")
    raise EndpointError(f"{len(missing)} of {len(items)} items got no answer from {backend.base_url} "
                        f"(model {backend.model}; {why}): {shown}. The {len(items) - len(missing)} answered "
                        "are cached: a rerun sends only the rest")
