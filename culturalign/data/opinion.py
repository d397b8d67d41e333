"""A judge's second opinion on the rows the cleaning rules kept but are unsure of (clean.second_opinion).

The rules (culturalign.data.clean, .answers, .code, english_context.yaml) see patterns; they cannot
see that an answer's facts are wrong, that a Chinese sentence no longer shows the grammar error its
English original had, or that an answer ignores its question. For the rows still alive after the
rules that are *flagged* (a weak signal fired: an English-context hint, code next to Chinese text, a
stated count or length, content pointed at, an unfinished last line) or, with `ask: all`, for every
row alive, the configured OpenAI-compatible judge (culturalign.llm: cached on disk, budgeted,
concurrent) answers one JSON object:

    {"sound": false, "problem": "english_bound" | "translated_code" | "broken", "confidence": 0.8, "why": "..."}

A row judged unsound is dropped as `judge_<problem>`; `meta.second_opinion` records the verdict on
every row asked. A reply that is not such an object (or none came back: failure, budget) is a judge
failure, counted in stats.json, and the row keeps the rules' decision: a failure never drops a row.
The verdicts order the human review sheet (culturalign.data.review): rows with no usable verdict and
rows the judge was least sure were sound come first.
"""
from __future__ import annotations

import json
import logging
import re

import polars as pl

from culturalign.data import answers

log = logging.getLogger(__name__)

VERDICTS = ("english_bound", "translated_code", "broken")
SYSTEM = (
    "你在为中文大模型审核指令微调数据，其中很多是从英文机器翻译过来的。判断下面这条样本（指令和回答）是否是一条合格的中文训练样本。"
    "不合格的情况只有三类：english_bound（任务只对英语或其他外语有意义：英文单词、字母、拼写、发音、押韵、词性或英文语法、"
    "双关和文字游戏、密码编码、翻译后已失去意义的任务；把内容翻译成英文不算）；translated_code（代码或标记的关键字、标签、"
    "类型或标识符被翻译成了中文，或用了全角标点）；broken（回答没有完成指令：内容缺失、字数或数量不符、语言不对、事实或计算错误、"
    "重复、被截断、答非所问）。只输出一个 JSON 对象，不要其他文字："
    '{"sound": true 或 false, "problem": null 或 "english_bound" 或 "translated_code" 或 "broken", '
    '"confidence": 0 到 1 之间的数（你对判断的把握）, "why": "一句话理由"}')
CODE_HINT = (r"(?i)```|(?:^|\n)\s*(?:def|class|import|select|update|insert|function|public|var|let|const|#include|print)(?-u:\b)"
             r"|<[a-z]+[\s>]|[{};]\s*(?:\n|$)|[a-z_]\w*(?:\.\w+)*\(")
ANSWER_HINT = (answers.NUM + r"\s*个?(?:汉)?字|" + answers.NUM + r"\s*(?:个|种|条|项|点|句)|" + answers.POINTS_AT
               + r"|" + answers.URL)
UNFINISHED = r"[\p{Han}A-Za-z0-9]\s*$"
JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def flags(prompt: pl.Expr, answer: pl.Expr, english_hint: pl.Expr) -> pl.Expr:
    """Why the rules are unsure of a row ("" when they are not), as a "; "-joined list."""
    text = prompt + pl.lit("\n") + answer
    parts = [pl.when(english_hint).then(pl.lit("english_bound?")),
             pl.when(text.str.contains(CODE_HINT) & text.str.contains(r"\p{Han}")).then(pl.lit("code?")),
             pl.when(prompt.str.contains(ANSWER_HINT) | answer.str.contains(UNFINISHED)).then(pl.lit("broken?"))]
    return pl.concat_str(parts, separator="; ", ignore_nulls=True).fill_null("")


def parse(reply: str | None) -> dict | None:
    """The verdict of one reply, or None when it is malformed (module doc)."""
    match = JSON_OBJECT.search(reply or "")
    try:
        value = json.loads(match[0]) if match else None
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("sound"), bool):
        return None
    confidence = value.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        return None
    problem = value.get("problem")
    if value["sound"] != (problem is None) or (problem is not None and problem not in VERDICTS):
        return None
    return {"sound": value["sound"], "problem": problem, "confidence": float(confidence),
            "why": str(value.get("why") or "")}


def request(prompt: str, answer: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"【指令】\n{prompt}\n\n【回答】\n{answer}"}]


def ask(prompts: list[str], replies_to: list[str], judge_cfg: dict, cache: str | None,
        usage: str | None) -> tuple[list[dict | None], int]:
    """(The judge's verdict per (prompt, answer), None where it gave no usable one; how many were not
    sent because the judge's budget was spent)."""
    from culturalign import llm  # the OpenAI client is imported only when a judge is configured
    backend = llm.make_backend(judge_cfg, cache, usage)
    try:
        replies = backend.complete([request(p, a) for p, a in zip(prompts, replies_to)],
                                   temperature=0.0, max_tokens=200)
    finally:
        backend.close()
    return [parse(reply) for reply in replies], backend.usage.budget_skipped


def second_opinion(work: pl.DataFrame, cfg: dict, judge_cfg: dict, cache: str | None,
                   usage: str | None) -> tuple[pl.DataFrame, dict]:
    """`work` (clean_frame's working frame: drop_reason, prompt, answer, english_hint, meta) with the
    judge's drops and meta added, and the note for stats.json. cfg: the `clean.second_opinion` block."""
    work = work.with_columns(flags=flags(pl.col("prompt"), pl.col("answer"), pl.col("english_hint")))
    alive = pl.col("drop_reason").is_null()
    asked = work.select(alive & ((pl.col("flags") != "") if cfg["ask"] == "flagged" else pl.lit(True))).to_series()
    index = asked.arg_true()
    skipped = 0
    if cfg.get("max_rows") is not None and len(index) > cfg["max_rows"]:
        skipped, index = len(index) - cfg["max_rows"], index.head(cfg["max_rows"])
    picked = work.select("prompt", "answer").gather(index)
    verdicts, over_budget = ask(picked["prompt"].to_list(), picked["answer"].to_list(), judge_cfg, cache, usage) \
        if len(index) else ([], 0)
    metas, reasons = work["meta"].to_list(), work["drop_reason"].to_list()
    row_flags = work["flags"].to_list()
    dropped = {f"judge_{v}": 0 for v in VERDICTS}
    for i, verdict in zip(index.to_list(), verdicts):
        meta = json.loads(metas[i] or "{}")
        meta["second_opinion"] = {**(verdict or {"failed": True}), "flags": row_flags[i]}
        metas[i] = json.dumps(meta, ensure_ascii=False)
        if verdict and not verdict["sound"]:
            reasons[i] = f"judge_{verdict['problem']}"
            dropped[reasons[i]] += 1
    note = {"on": True, "ask": cfg["ask"], "flagged": int(work.select(alive & (pl.col("flags") != "")).to_series().sum()),
            "asked": len(index), "failed": sum(v is None for v in verdicts) - over_budget,
            "budget_skipped": over_budget, "skipped": skipped, "dropped": dropped}
    log.info("second opinion: %s", note)
    return work.with_columns(meta=pl.Series("meta", metas, dtype=pl.String),
                             drop_reason=pl.Series("drop_reason", reasons, dtype=pl.String)), note
